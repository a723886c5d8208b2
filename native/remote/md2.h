/*
 * md2.h: MD2 (RFC 1319) and HMAC-MD2 (RFC 2104 with MD2's 16-byte block). The CUDA runtime
 * checks the driver it talks to with an HMAC-MD2 answer (client_export.c's integrity table);
 * this is the hash it needs, nothing else here uses it (MD2 is not a security primitive).
 */
#ifndef GSR_MD2_H
#define GSR_MD2_H

#include <stddef.h>
#include <stdint.h>

typedef struct gsr_md2 {
    uint8_t x[48];        /* the state block (16 bytes), the input block, their xor */
    uint8_t checksum[16];
    uint8_t buffered;     /* bytes of the input block filled so far */
    uint8_t last;         /* the checksum's running byte (RFC 1319's L) */
} gsr_md2;

void gsr_md2_init(gsr_md2 *m);
void gsr_md2_update(gsr_md2 *m, const void *data, size_t n);
void gsr_md2_final(gsr_md2 *m, uint8_t digest[16]);

/* HMAC-MD2 of a message given in pieces (nparts pointers and lengths), keyed by 16 bytes. */
void gsr_hmac_md2(const uint8_t key[16], const void *const *parts, const size_t *lens, size_t nparts, uint8_t digest[16]);

#endif /* GSR_MD2_H */
