/* proto.c: the remote wire codec (proto.h, docs/remote.md). Pure: no I/O, no state. */
#include "proto.h"

#include <string.h>

#define GSR_OP_NAME_CASE(name, number, request, reply) \
    case number:                       \
        return #name;

const char *gsr_op_name(unsigned op) {
    switch (op) {
        GSR_OP_LIST(GSR_OP_NAME_CASE)
    default:
        return NULL;
    }
}
#undef GSR_OP_NAME_CASE

static void put_le(uint8_t *p, uint64_t v, unsigned bytes) {
    for (unsigned i = 0; i < bytes; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned bytes) {
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

void gsr_header_encode(const gsr_header *h, uint8_t out[GSR_HEADER_BYTES]) {
    put_le(out, h->length, 4);
    put_le(out + 4, h->op, 2);
    put_le(out + 6, h->flags, 2);
    put_le(out + 8, h->id, 4);
    put_le(out + 12, (uint32_t)h->status, 4);
    put_le(out + 16, h->ctx, 8);
}

gsr_error gsr_header_decode(const uint8_t in[GSR_HEADER_BYTES], gsr_header *h) {
    h->length = (uint32_t)get_le(in, 4);
    h->op = (uint16_t)get_le(in + 4, 2);
    h->flags = (uint16_t)get_le(in + 6, 2);
    h->id = (uint32_t)get_le(in + 8, 4);
    h->status = (int32_t)(uint32_t)get_le(in + 12, 4);
    h->ctx = get_le(in + 16, 8);
    if (h->length > (h->op == GSR_OP_DATA ? GSR_MAX_DATA : GSR_MAX_PAYLOAD)) return GSR_ERR_LENGTH;
    if (gsr_op_name(h->op) == NULL) return GSR_ERR_OP;
    if (h->flags & ~GSR_FLAGS_KNOWN) return GSR_ERR_FLAGS;
    if ((h->flags & GSR_FLAG_COMPRESSED) && h->op != GSR_OP_DATA) return GSR_ERR_FLAGS;
    return GSR_OK;
}

void gsr_writer_init(gsr_writer *w, uint8_t *buf, size_t cap) {
    w->buf = buf;
    w->cap = cap;
    w->len = 0;
    w->bad = 0;
}

static uint8_t *writer_take(gsr_writer *w, size_t n) {
    if (w->bad || n > w->cap - w->len) {
        w->bad = 1;
        return NULL;
    }
    uint8_t *p = w->buf + w->len;
    w->len += n;
    return p;
}

void gsr_put_u32(gsr_writer *w, uint32_t v) {
    uint8_t *p = writer_take(w, 4);
    if (p) put_le(p, v, 4);
}

void gsr_put_i32(gsr_writer *w, int32_t v) { gsr_put_u32(w, (uint32_t)v); }

void gsr_put_u64(gsr_writer *w, uint64_t v) {
    uint8_t *p = writer_take(w, 8);
    if (p) put_le(p, v, 8);
}

void gsr_put_blob(gsr_writer *w, const void *data, size_t n) {
    if (n > UINT32_MAX) {
        w->bad = 1;
        return;
    }
    gsr_put_u32(w, (uint32_t)n);
    uint8_t *p = writer_take(w, n);
    if (p && n) memcpy(p, data, n);
}

void gsr_reader_init(gsr_reader *r, const uint8_t *buf, size_t len) {
    r->buf = buf;
    r->len = len;
    r->pos = 0;
    r->bad = 0;
}

static const uint8_t *reader_take(gsr_reader *r, size_t n) {
    if (r->bad || n > r->len - r->pos) {
        r->bad = 1;
        return NULL;
    }
    const uint8_t *p = r->buf + r->pos;
    r->pos += n;
    return p;
}

uint32_t gsr_get_u32(gsr_reader *r) {
    const uint8_t *p = reader_take(r, 4);
    return p ? (uint32_t)get_le(p, 4) : 0;
}

int32_t gsr_get_i32(gsr_reader *r) { return (int32_t)gsr_get_u32(r); }

uint64_t gsr_get_u64(gsr_reader *r) {
    const uint8_t *p = reader_take(r, 8);
    return p ? get_le(p, 8) : 0;
}

const uint8_t *gsr_get_blob(gsr_reader *r, size_t max, size_t *n) {
    uint32_t len = gsr_get_u32(r);
    *n = 0;
    if (r->bad) return NULL;
    if (len > max) {
        r->bad = 1;
        return NULL;
    }
    const uint8_t *p = reader_take(r, len);
    if (p) *n = len;
    return p;
}

gsr_error gsr_reader_done(const gsr_reader *r) {
    return (r->bad || r->pos != r->len) ? GSR_ERR_PAYLOAD : GSR_OK;
}

#define GSR_OP_SCHEMA_CASE(name, number, request, reply) \
    case number:                                         \
        return want_reply ? reply : request;

const char *gsr_schema(unsigned op, int want_reply) {
    switch (op) {
        GSR_OP_LIST(GSR_OP_SCHEMA_CASE)
    default:
        return NULL;
    }
}
#undef GSR_OP_SCHEMA_CASE

gsr_error gsr_decode(unsigned op, int reply, const uint8_t *payload, size_t len, gsr_args *out) {
    const char *schema = gsr_schema(op, reply);
    memset(out, 0, sizeof *out);
    if (schema == NULL) return GSR_ERR_OP;
    gsr_reader r;
    gsr_reader_init(&r, payload, len);
    for (const char *f = schema; *f; f++) {
        if (out->nv == GSR_MAX_SCALARS || out->nblob == GSR_MAX_BLOBS) return GSR_ERR_OP; /* a schema bug */
        switch (*f) {
        case 'u':
            out->v[out->nv++] = gsr_get_u32(&r);
            break;
        case 'i':
            out->v[out->nv++] = (uint64_t)(int64_t)gsr_get_i32(&r);
            break;
        case 'q':
            out->v[out->nv++] = gsr_get_u64(&r);
            break;
        default: /* 'b' */
            out->blob[out->nblob] = gsr_get_blob(&r, GSR_MAX_PAYLOAD, &out->blob_len[out->nblob]);
            out->nblob++;
            break;
        }
    }
    return gsr_reader_done(&r);
}

void gsr_encode(unsigned op, int reply, const gsr_args *in, gsr_writer *w) {
    const char *schema = gsr_schema(op, reply);
    unsigned nv = 0, nb = 0;
    if (schema == NULL) {
        w->bad = 1;
        return;
    }
    for (const char *f = schema; *f; f++) {
        if (*f == 'b') {
            if (nb >= in->nblob) break;
            gsr_put_blob(w, in->blob[nb], in->blob_len[nb]);
            nb++;
        } else {
            if (nv >= in->nv) break;
            if (*f == 'q')
                gsr_put_u64(w, in->v[nv]);
            else
                gsr_put_u32(w, (uint32_t)in->v[nv]);
            nv++;
        }
    }
    if (nv != in->nv || nb != in->nblob || strlen(schema) != nv + nb) w->bad = 1;
}
