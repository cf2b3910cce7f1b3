/* SPDX-License-Identifier: Apache-2.0 */
/*
 * frames.h - the bytes the scheduler sends for EAS frames and attributes
 * (docs/eas-api.md, "Frames and encodings"):
 *
 *  - a get's body: DataFrameListProto (Accept: application/vnd.google.protobuf)
 *    or the JSON array [{"index":N,"tags":{...},"data":"<base64>","message":""}];
 *  - one watch frame: a DataFrameProto, alone (a WebSocket binary message) or
 *    after its 4-byte big-endian length (the chunked streaming form);
 *  - attributes: AttributesProto or a JSON object of strings.
 *
 * The messages are those of scheduler/eas.proto. Decoding is here for the
 * tests and the scheduler's own clients. Every buffer handed out is malloc()ed
 * and the caller free()s it. No state: safe from any thread.
 */
#ifndef SCH_FRAMES_H
#define SCH_FRAMES_H

#include "store.h"
#include "tg_err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/*
 * Tags and attributes are objects of strings on the wire. An integer, real or
 * boolean value is sent as its JSON text ("42", "true"); null, an object or an
 * array is refused with TG_ERR_INVAL. Frames carry no message: it is sent as
 * "" (and so absent from the protobuf bytes).
 */

/**
 * sch_frames_encode_list() - the body of a get: all @n frames
 * @f:          the frames (may be NULL when @n is 0)
 * @n:          their number (0: an empty list)
 * @protobuf:   DataFrameListProto; false: the JSON array
 * @index_only: leave the data out (index and tags only)
 * @out:        set to the bytes (free())
 * @len:        set to their length
 *
 * A frame with a NULL tags is sent with no tags. In JSON an index above
 * INT64_MAX is refused (jansson integers are signed).
 *
 * Return: TG_OK, TG_ERR_INVAL (bad argument, a tag that is not a string or
 * scalar) or TG_ERR_NOMEM. On error *@out is NULL and *@len 0.
 */
tg_err_t sch_frames_encode_list(const struct sch_frame *f, int n, bool protobuf, bool index_only,
                                unsigned char **out, size_t *len);

/**
 * sch_frame_encode_one() - one frame as a DataFrameProto (a WebSocket message)
 * @f:          the frame
 * @index_only: leave the data out
 * @out:        set to the bytes (free()); never NULL on success, even for an
 *              empty message (index 0, no tags, no data)
 * @len:        set to their length (may be 0)
 *
 * Return: TG_OK, TG_ERR_INVAL or TG_ERR_NOMEM.
 */
tg_err_t sch_frame_encode_one(const struct sch_frame *f, bool index_only, unsigned char **out,
                              size_t *len);

/**
 * sch_frame_encode_prefixed() - one frame for the streaming (non-WebSocket) watch
 * @f:          the frame
 * @index_only: leave the data out
 * @out:        set to [4-byte big-endian length][DataFrameProto] (free())
 * @len:        set to the total length (4 + the message's)
 *
 * Return: TG_OK, TG_ERR_INVAL, TG_ERR_TOO_LARGE (message over 4 GiB - 1) or
 * TG_ERR_NOMEM.
 */
tg_err_t sch_frame_encode_prefixed(const struct sch_frame *f, bool index_only,
                                   unsigned char **out, size_t *len);

/**
 * sch_attrs_encode() - the body of an attributes request
 * @attrs:    a JSON object of strings (scalars are sent as text, see above)
 * @protobuf: AttributesProto; false: a compact JSON object of strings
 * @out:      set to the bytes (free())
 * @len:      set to their length
 *
 * Return: TG_OK, TG_ERR_INVAL or TG_ERR_NOMEM.
 */
tg_err_t sch_attrs_encode(json_t *attrs, bool protobuf, unsigned char **out, size_t *len);

/**
 * sch_frames_decode_list() - parse a get's body back into frames
 * @buf:      the bytes
 * @len:      their length
 * @protobuf: DataFrameListProto; false: the JSON array
 * @out:      set to the frames (free each with sch_frame_clear(), then the
 *            array with free()); NULL when there are none
 * @n_out:    set to their number
 *
 * Each frame's tags is a new JSON object of strings (never NULL) and its data
 * a malloc()ed copy with a NUL byte after the last one (never NULL, also when
 * empty). A frame's message is dropped.
 *
 * Return: TG_OK, TG_ERR_BAD_MSG (not such a message, bad base64, a JSON tag
 * that is not a string) or TG_ERR_NOMEM.
 */
tg_err_t sch_frames_decode_list(const unsigned char *buf, size_t len, bool protobuf,
                                struct sch_frame **out, int *n_out);

/**
 * sch_frame_decode_one() - parse one DataFrameProto
 * @buf: the bytes (without a length prefix)
 * @len: their length
 * @out: filled as by sch_frames_decode_list() (sch_frame_clear())
 *
 * Return: TG_OK, TG_ERR_BAD_MSG or TG_ERR_NOMEM.
 */
tg_err_t sch_frame_decode_one(const unsigned char *buf, size_t len, struct sch_frame *out);

/**
 * sch_attrs_decode() - parse an attributes body back into a JSON object
 * @buf:      the bytes
 * @len:      their length
 * @protobuf: AttributesProto; false: a JSON object of strings
 * @out:      set to a new object of strings (json_decref())
 *
 * Return: TG_OK, TG_ERR_BAD_MSG or TG_ERR_NOMEM.
 */
tg_err_t sch_attrs_decode(const unsigned char *buf, size_t len, bool protobuf, json_t **out);

/**
 * sch_frame_clear() - free a decoded frame's tags and data and zero it (NULL-safe)
 * @f: the frame (the struct itself is not freed)
 */
void sch_frame_clear(struct sch_frame *f);

#endif
