/* SPDX-License-Identifier: MIT */
/*
 * Userspace halves of the TUN offloads. With IFF_VNET_HDR and TUNSETOFFLOAD the kernel hands
 * us TCP/UDP "superpackets" of up to 64 KiB with a struct virtio_net_hdr in front (TSO/USO,
 * checksum left partial); we cut them into MTU-sized packets before encryption
 * (offload_segment). In the other direction we coalesce decrypted TCP segments of one flow back
 * into a superpacket so the kernel sees one large write instead of dozens (offload_gro_*).
 */
#ifndef WICE_WG_OFFLOAD_H
#define WICE_WG_OFFLOAD_H

#include <stdint.h>
#include <stddef.h>
#include <sys/uio.h>
#include <linux/virtio_net.h>

#ifndef VIRTIO_NET_HDR_GSO_UDP_L4
#define VIRTIO_NET_HDR_GSO_UDP_L4 5
#endif
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#endif
#ifndef TUN_F_USO6
#define TUN_F_USO6 0x40
#endif

#define OFFLOAD_VNET_HDR_LEN sizeof(struct virtio_net_hdr) /* 10 */

/*
 * Split one packet read from TUN (hdr is its virtio_net_hdr, pkt/len the IP packet after it)
 * into complete IP packets of at most mtu bytes each, every one with correct IPv4 header
 * checksum, total length / payload length, TCP sequence numbers and flags (FIN and PSH only on
 * the last segment, CWR only on the first), IPv4 ids incremented per segment, and a full
 * TCP/UDP checksum. A packet without GSO but with VIRTIO_NET_HDR_F_NEEDS_CSUM gets its
 * checksum completed and is emitted as one segment; a plain packet is copied as one segment.
 *
 * Segment i is written at out + i * stride, its length stored in lens[i]. Returns the number
 * of segments (1..max_segs), -EMSGSIZE if they would not fit in max_segs or a segment exceeds
 * stride, -EINVAL for a malformed header or packet (bad gso_type, csum_start beyond the packet,
 * truncated IP/TCP/UDP header, IP version not matching the gso type, and so on).
 */
int offload_segment(const struct virtio_net_hdr *hdr, const uint8_t *pkt, size_t len,
		    size_t mtu, uint8_t *out, size_t stride, size_t max_segs, size_t *lens);

/* Payload bytes per segment that offload_segment will produce for a superpacket, so callers
 * can size stride before calling: header length + gso_size (or len when not GSO). Returns
 * -EINVAL like offload_segment. */
int offload_segment_len(const struct virtio_net_hdr *hdr, const uint8_t *pkt, size_t len);

/*
 * Receive-side coalescing. Packets are added in arrival order; TCP segments (IPv4 without
 * options or IPv6 without extension headers) that continue the same flow exactly (same
 * addresses, ports, ack, window, TOS/traffic class, TTL/hop limit, identical TCP options,
 * sequence number == end of the previous segment, only ACK or ACK|PSH set, payload size equal
 * to the first segment's, the merged packet staying under 64 KiB, and no segment after a
 * shorter one or a PSH) are merged into one superpacket whose virtio_net_hdr says
 * GSO_TCPV4/TCPV6 with gso_size = first payload size and NEEDS_CSUM (csum_start at the TCP
 * header, offset 16, the TCP checksum field holding the pseudo-header sum) as the kernel
 * expects. Every other packet is passed through alone with flags = VIRTIO_NET_HDR_F_DATA_VALID
 * (it was authenticated by the tunnel, like the kernel driver's CHECKSUM_UNNECESSARY).
 *
 * No payload is copied: output iovecs point into the buffers given to offload_gro_add, which
 * must stay valid and unchanged until offload_gro_flush returns. Headers of merged packets
 * are rewritten in copies held inside struct offload_gro.
 */
#define OFFLOAD_GRO_MAX_PKTS  128 /* packets held before a flush is forced */
#define OFFLOAD_GRO_MAX_FLOWS 16  /* output superpackets held before a flush is forced */

struct offload_gro_flow;

struct offload_gro {
	/* private: sized for OFFLOAD_GRO_MAX_PKTS inputs and OFFLOAD_GRO_MAX_FLOWS outputs */
	unsigned int n_out;
	unsigned int n_pkts;
	struct offload_gro_out {
		uint8_t hdr[OFFLOAD_VNET_HDR_LEN + 60 + 60]; /* vnet hdr + IP + TCP headers */
		uint16_t hdr_len;
		uint16_t first_iov;
		uint16_t n_iov;
		uint8_t mergeable;
		uint8_t family;
		uint32_t next_seq;
		uint16_t gso_size;
		uint16_t total_len; /* IP packet length so far */
	} out[OFFLOAD_GRO_MAX_FLOWS];
	struct iovec iov[OFFLOAD_GRO_MAX_PKTS + OFFLOAD_GRO_MAX_FLOWS];
	unsigned int n_iov;
};

typedef int (*offload_write_fn)(void *ctx, const struct iovec *iov, int iovcnt);

void offload_gro_init(struct offload_gro *g);
/*
 * Add one decrypted IP packet. Returns 0 when held, or the first negative value returned by
 * write if a forced flush failed (the packet is then still held). A packet of an unknown
 * IP version or shorter than its header is passed through alone (the kernel drops it).
 */
int offload_gro_add(struct offload_gro *g, const uint8_t *pkt, size_t len, offload_write_fn write,
		    void *ctx);
/* Emit everything held, in order (each output: vnet hdr + packet as one iovec list). Returns 0
 * or the first negative value write returned; the batch is emptied either way. */
int offload_gro_flush(struct offload_gro *g, offload_write_fn write, void *ctx);

/* Internet checksum helpers, exported for tests and the segmenter. */
uint32_t offload_csum_add(uint32_t sum, const void *data, size_t len);
uint16_t offload_csum_fold(uint32_t sum);

#endif
