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
 * The vnet header's hdr_len is only a hint: the header length is taken from the packet. With
 * GSO and NEEDS_CSUM, csum_start must be the IP header length (TCP/UDP right after the IPv4
 * header or the fixed IPv6 header; IPv6 extension headers are -EINVAL). Vnet header fields are
 * in host byte order (a legacy TUN without TUNSETVNETLE/BE).
 *
 * Segment i is written at out + i * stride, its length stored in lens[i]. Returns the number
 * of segments (1..max_segs), -EMSGSIZE if they would not fit in max_segs or a segment exceeds
 * mtu or stride, -EINVAL for a malformed header or packet (bad gso_type, csum_start beyond the
 * packet, truncated IP/TCP/UDP header, IP version not matching the gso type, and so on).
 */
int offload_segment(const struct virtio_net_hdr *hdr, const uint8_t *pkt, size_t len, size_t mtu,
		    uint8_t *out, size_t stride, size_t max_segs, size_t *lens);

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
 * Outputs are emitted in the order of their first packets; only the newest output of a flow
 * may grow, so each flow keeps its order. IPv4 segments must carry DF and a valid header
 * checksum to be merged. A packet that might belong to a TCP flow we cannot see into (IPv6
 * extension headers, IPv4 fragments, lengths that disagree) ends every merge in progress.
 *
 * No payload is copied: output iovecs point into the buffers given to offload_gro_add, which
 * must stay valid and unchanged until offload_gro_flush returns. Headers of merged packets
 * are rewritten in copies held inside struct offload_gro.
 */
#define OFFLOAD_GRO_MAX_PKTS  128 /* packets held before a flush is forced */
#define OFFLOAD_GRO_MAX_FLOWS 16  /* output superpackets held before a flush is forced */

struct offload_gro {
	/* private: sized for OFFLOAD_GRO_MAX_PKTS inputs and OFFLOAD_GRO_MAX_FLOWS outputs */
	unsigned int n_out;  /* outputs held, in arrival order of their first packet */
	unsigned int n_pkts; /* input packets held, all outputs together */
	struct offload_gro_out {
		/* vnet hdr, then (merged outputs only, written at flush) IP + TCP headers */
		uint8_t hdr[OFFLOAD_VNET_HDR_LEN + 40 + 60];
		const uint8_t *pkt; /* first packet, in the caller's buffer */
		size_t len;	    /* its length */
		uint32_t next_seq;  /* TCP sequence number the next merged segment must carry */
		uint16_t ip_len;    /* IP packet length of the merged output so far */
		uint16_t hdr_len;   /* IP + TCP header length of the first packet */
		uint16_t gso_size;  /* payload length of the first packet */
		int16_t seg_head;   /* merged segments after the first: index in seg[], or -1 */
		int16_t seg_tail;
		uint8_t l4_off; /* IP header length of the first packet */
		uint8_t family; /* 4 or 6 for a keyed TCP flow, 0 otherwise */
		uint8_t open;	/* may still take segments */
		uint8_t psh;	/* last merged segment carried PSH */
	} out[OFFLOAD_GRO_MAX_FLOWS];
	struct offload_gro_seg {
		const uint8_t *data; /* payload of a merged segment, in the caller's buffer */
		uint16_t len;
		int16_t next;
	} seg[OFFLOAD_GRO_MAX_PKTS];
	unsigned int n_seg;
	struct iovec iov[OFFLOAD_GRO_MAX_PKTS + 1]; /* scratch for one output at flush */
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

/*
 * Internet checksum helpers (RFC 1071), exported for tests and the segmenter. The running sum
 * is the one's complement sum of the data read as big-endian 16-bit words, held in 32 bits
 * with end-around carry, so host-order numbers (a pseudo-header's protocol and length) may be
 * added to it directly. Only the last chunk added to a sum may have an odd length.
 * offload_csum_fold folds to 16 bits and returns the complement, in host order: the value to
 * store (with htons) in a checksum field that was zero while summing. A checksum field that
 * is verified in place folds to 0.
 */
uint32_t offload_csum_add(uint32_t sum, const void *data, size_t len);
uint16_t offload_csum_fold(uint32_t sum);

#endif
