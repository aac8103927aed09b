/* SPDX-License-Identifier: MIT */
/*
 * The one piece of protobuf wire format we read by hand: which member of a oneof frame
 * (ClientFrame, ServerFrame) is set, returned in place. Routing then hands an embedded
 * Envelope on byte for byte, with no decode and re-encode; everything else is decoded with
 * protobuf-c.
 */
#ifndef WICE_SIGNAL_FRAME_H
#define WICE_SIGNAL_FRAME_H

#include <stddef.h>
#include <stdint.h>

/*
 * The set member of a message that is a oneof of length-delimited fields 1..max_field: the
 * last one wins and unknown fields are skipped, as protobuf decoders do. Returns the field
 * number with ret and ret_len pointing into buf, 0 when none is set, -EBADMSG when malformed
 * (truncated, bad varint, field number 0, a known field with another wire type, or a
 * deprecated group).
 */
int frame_oneof(const uint8_t *buf, size_t len, unsigned int max_field, const uint8_t **ret,
		size_t *ret_len);

#endif
