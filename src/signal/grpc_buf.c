/* SPDX-License-Identifier: MIT */
#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>
#include "signal/grpc_buf.h"

grpc_slice grpcbuf_slice(grpc_byte_buffer *bb)
{
	grpc_byte_buffer_reader r;
	grpc_slice s;

	if (!grpc_byte_buffer_reader_init(&r, bb))
		return grpc_empty_slice();
	s = grpc_byte_buffer_reader_readall(&r);
	grpc_byte_buffer_reader_destroy(&r);
	return s;
}

grpc_byte_buffer *grpcbuf_from_slice(grpc_slice s)
{
	grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);

	grpc_slice_unref(s);
	return bb;
}

grpc_byte_buffer *grpcbuf_pack(const ProtobufCMessage *m)
{
	grpc_slice s = grpc_slice_malloc(protobuf_c_message_get_packed_size(m));

	protobuf_c_message_pack(m, GRPC_SLICE_START_PTR(s));
	return grpcbuf_from_slice(s);
}

grpc_arg grpcbuf_int_arg(const char *name, int value)
{
	grpc_arg a = {.type = GRPC_ARG_INTEGER, .key = (char *)name};

	a.value.integer = value;
	return a;
}
