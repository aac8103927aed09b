# The two commands that do everything, on a fresh Debian 12 machine as root:
#   make demo   installs what it needs, builds, and runs the demo
#   make test   installs what it needs, builds, and runs every test
BUILD ?= build

.PHONY: all deps build demo test bench clean

all: build

deps:
	@sh scripts/deps.sh

$(BUILD)/build.ninja:
	@meson setup $(BUILD) --buildtype=debugoptimized -Dwerror=true >/dev/null

build: deps $(BUILD)/build.ninja
	@ninja -C $(BUILD) >/dev/null || ninja -C $(BUILD)

demo: build
	@bash scripts/demo.sh

test: build
	@bash tests/run.sh

bench: build
	@bash bench/throughput.sh

clean:
	rm -rf $(BUILD) build-asan
