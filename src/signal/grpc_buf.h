/* SPDX-License-Identifier: MIT */
/* Byte-buffer and channel-argument helpers shared by the gRPC client and server. */
#ifndef WICE_SIGNAL_GRPC_BUF_H
#define WICE_SIGNAL_GRPC_BUF_H

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>

/* The message in one contiguous slice (gRPC may have split it). Unref the result. */
grpc_slice grpcbuf_slice(grpc_byte_buffer *bb);
/* A byte buffer holding s; takes s over. */
grpc_byte_buffer *grpcbuf_from_slice(grpc_slice s);
/* A byte buffer holding the encoding of m. */
grpc_byte_buffer *grpcbuf_pack(const ProtobufCMessage *m);
/* An integer channel argument. */
grpc_arg grpcbuf_int_arg(const char *name, int value);

#endif
