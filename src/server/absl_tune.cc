// SPDX-License-Identifier: MIT
// The one C++ line wice needs: Debian's abseil (under gRPC) is built with mutex deadlock
// detection on, which looks every mutex up in a global graph on every lock; with thousands of
// connections that was 13 % of the signal server's CPU. Detection is a debugging aid; turn
// it off where gRPC is used.
#include <absl/synchronization/mutex.h>

extern "C" void absl_tune_for_server(void);

extern "C" void absl_tune_for_server(void)
{
	absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}
