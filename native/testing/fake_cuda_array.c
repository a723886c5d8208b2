/*
 * fake_cuda_array.c: CUDA arrays and mipmapped arrays. They cost
 * width x height x depth x element size (format bytes x channels), rounded up to
 * `allocRounding`; block-compressed formats count 4x4 blocks; a mipmapped array costs the
 * sum of its levels (each dimension halved per level, at least 1). Video formats (NV12,
 * P010, ...) are refused with CUDA_ERROR_NOT_SUPPORTED.
 */
#include <stdlib.h>

#include "fake_cuda_state.h"

/* Bytes per element for one channel, or for the whole element when *packed. 0: unknown. */
static unsigned int format_bytes(CUarray_format f, bool *packed, unsigned int *block)
{
    *packed = false;
    *block = 0;
    switch (f) {
    case CU_AD_FORMAT_UNSIGNED_INT8:
    case CU_AD_FORMAT_SIGNED_INT8: return 1;
    case CU_AD_FORMAT_UNSIGNED_INT16:
    case CU_AD_FORMAT_SIGNED_INT16:
    case CU_AD_FORMAT_HALF: return 2;
    case CU_AD_FORMAT_UNSIGNED_INT32:
    case CU_AD_FORMAT_SIGNED_INT32:
    case CU_AD_FORMAT_FLOAT: return 4;
    default: break;
    }
    *packed = true;
    switch (f) {
    case CU_AD_FORMAT_UNORM_INT8X1:
    case CU_AD_FORMAT_SNORM_INT8X1: return 1;
    case CU_AD_FORMAT_UNORM_INT8X2:
    case CU_AD_FORMAT_SNORM_INT8X2:
    case CU_AD_FORMAT_UNORM_INT16X1:
    case CU_AD_FORMAT_SNORM_INT16X1: return 2;
    case CU_AD_FORMAT_UNORM_INT8X4:
    case CU_AD_FORMAT_SNORM_INT8X4:
    case CU_AD_FORMAT_UNORM_INT16X2:
    case CU_AD_FORMAT_SNORM_INT16X2:
    case CU_AD_FORMAT_UNORM_INT_101010_2: return 4;
    case CU_AD_FORMAT_UNORM_INT16X4:
    case CU_AD_FORMAT_SNORM_INT16X4: return 8;
    case CU_AD_FORMAT_BC1_UNORM:
    case CU_AD_FORMAT_BC1_UNORM_SRGB:
    case CU_AD_FORMAT_BC4_UNORM:
    case CU_AD_FORMAT_BC4_SNORM: *block = 8; return 8;
    case CU_AD_FORMAT_BC2_UNORM:
    case CU_AD_FORMAT_BC2_UNORM_SRGB:
    case CU_AD_FORMAT_BC3_UNORM:
    case CU_AD_FORMAT_BC3_UNORM_SRGB:
    case CU_AD_FORMAT_BC5_UNORM:
    case CU_AD_FORMAT_BC5_SNORM:
    case CU_AD_FORMAT_BC6H_UF16:
    case CU_AD_FORMAT_BC6H_SF16:
    case CU_AD_FORMAT_BC7_UNORM:
    case CU_AD_FORMAT_BC7_UNORM_SRGB: *block = 16; return 16;
    default: return 0;
    }
}

/* Bytes of one level; false (with *r set) on a bad descriptor. */
static bool level_bytes(size_t w, size_t h, size_t d, CUarray_format f, unsigned int channels, unsigned int flags,
                        unsigned long long *out, CUresult *r)
{
    bool packed;
    unsigned int block;
    unsigned int per = format_bytes(f, &packed, &block);
    if (per == 0) {
        bool video = f == CU_AD_FORMAT_NV12 || (f >= 0x9f && f <= 0xb5);
        *r = video ? CUDA_ERROR_NOT_SUPPORTED : CUDA_ERROR_INVALID_VALUE;
        return false;
    }
    if (w == 0 || (!packed && channels != 1 && channels != 2 && channels != 4) ||
        ((flags & CUDA_ARRAY3D_CUBEMAP) && (w != h || d % 6 != 0))) {
        *r = CUDA_ERROR_INVALID_VALUE;
        return false;
    }
    unsigned long long hh = h ? h : 1, dd = d ? d : 1, elem = packed ? per : (unsigned long long)per * channels;
    unsigned long long row = block ? (w + 3) / 4 * elem : w * elem;
    if (block)
        hh = (hh + 3) / 4;
    if (row > ~0ULL / hh || row * hh > ~0ULL / dd) {
        *r = CUDA_ERROR_OUT_OF_MEMORY;
        return false;
    }
    *out = row * hh * dd;
    return true;
}

/* Rounds and charges an array's bytes to its context's device. */
static CUresult charge(unsigned long long bytes, struct CUctx_st *ctx, unsigned long long *charged)
{
    *charged = fake_round_up(bytes, fake_state()->config.alloc_rounding);
    return fake_charge(ctx->device, *charged);
}

static CUresult array_create(const char *fn, CUarray *ph, size_t w, size_t h, size_t d, CUarray_format f,
                             unsigned int channels, unsigned int flags)
{
    struct CUctx_st *ctx;
    unsigned long long bytes = 0, charged = 0;
    CUresult r = fake_enter(fn);
    if (r == CUDA_SUCCESS && !ph)
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS)
        r = fake_need_ctx(&ctx);
    if (r == CUDA_SUCCESS && !level_bytes(w, h, d, f, channels, flags, &bytes, &r))
        return fake_leave(r);
    if (r == CUDA_SUCCESS)
        r = charge(bytes, ctx, &charged);
    if (r != CUDA_SUCCESS)
        return fake_leave(r);
    struct CUarray_st *a = calloc(1, sizeof *a);
    if (!a) {
        fake_uncharge(ctx->device, charged);
        return fake_leave(CUDA_ERROR_OUT_OF_MEMORY);
    }
    a->device = ctx->device;
    a->ctx = ctx;
    a->charged = charged;
    fake_list_add(&fake_state()->arrays, a);
    *ph = a;
    return fake_leave(CUDA_SUCCESS);
}

FAKE_EXPORT CUresult cuArrayCreate_v2(CUarray *pHandle, const CUDA_ARRAY_DESCRIPTOR *p)
{
    if (!p)
        return CUDA_ERROR_INVALID_VALUE;
    return array_create("cuArrayCreate_v2", pHandle, p->Width, p->Height, 0, p->Format, p->NumChannels, 0);
}

FAKE_EXPORT CUresult cuArrayCreate(CUarray *pHandle, const CUDA_ARRAY_DESCRIPTOR_v1 *p)
{
    if (!p)
        return CUDA_ERROR_INVALID_VALUE;
    return array_create("cuArrayCreate", pHandle, p->Width, p->Height, 0, p->Format, p->NumChannels, 0);
}

FAKE_EXPORT CUresult cuArray3DCreate_v2(CUarray *pHandle, const CUDA_ARRAY3D_DESCRIPTOR *p)
{
    if (!p)
        return CUDA_ERROR_INVALID_VALUE;
    return array_create("cuArray3DCreate_v2", pHandle, p->Width, p->Height, p->Depth, p->Format, p->NumChannels,
                        p->Flags);
}

FAKE_EXPORT CUresult cuArray3DCreate(CUarray *pHandle, const CUDA_ARRAY3D_DESCRIPTOR_v1 *p)
{
    if (!p)
        return CUDA_ERROR_INVALID_VALUE;
    return array_create("cuArray3DCreate", pHandle, p->Width, p->Height, p->Depth, p->Format, p->NumChannels,
                        p->Flags);
}

FAKE_EXPORT CUresult cuArrayDestroy(CUarray hArray)
{
    CUresult r = fake_enter("cuArrayDestroy");
    if (r == CUDA_SUCCESS && !fake_list_has(&fake_state()->arrays, hArray))
        r = CUDA_ERROR_INVALID_HANDLE;
    if (r == CUDA_SUCCESS) {
        fake_uncharge(hArray->device, hArray->charged);
        fake_list_remove(&fake_state()->arrays, hArray);
        free(hArray);
    }
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuMipmappedArrayCreate(CUmipmappedArray *pHandle, const CUDA_ARRAY3D_DESCRIPTOR *p,
                                            unsigned int numMipmapLevels)
{
    struct CUctx_st *ctx;
    unsigned long long total = 0, charged = 0;
    CUresult r = fake_enter("cuMipmappedArrayCreate");
    if (r == CUDA_SUCCESS && (!pHandle || !p || numMipmapLevels == 0 || numMipmapLevels > 32))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS)
        r = fake_need_ctx(&ctx);
    bool layered = p && (p->Flags & (CUDA_ARRAY3D_LAYERED | CUDA_ARRAY3D_CUBEMAP));
    for (unsigned int l = 0; r == CUDA_SUCCESS && l < numMipmapLevels; l++) {
        size_t w = p->Width >> l, h = p->Height >> l, d = layered ? p->Depth : p->Depth >> l;
        unsigned long long bytes;
        /* Each level is at least 1 in every dimension the base level has. */
        if (!level_bytes(w ? w : 1, p->Height && !h ? 1 : h, p->Depth && !d ? 1 : d, p->Format, p->NumChannels,
                         p->Flags, &bytes, &r))
            return fake_leave(r);
        total += bytes;
    }
    if (r == CUDA_SUCCESS)
        r = charge(total, ctx, &charged);
    if (r != CUDA_SUCCESS)
        return fake_leave(r);
    struct CUmipmappedArray_st *m = calloc(1, sizeof *m);
    if (!m) {
        fake_uncharge(ctx->device, charged);
        return fake_leave(CUDA_ERROR_OUT_OF_MEMORY);
    }
    m->device = ctx->device;
    m->ctx = ctx;
    m->charged = charged;
    fake_list_add(&fake_state()->mipmaps, m);
    *pHandle = m;
    return fake_leave(CUDA_SUCCESS);
}

FAKE_EXPORT CUresult cuMipmappedArrayDestroy(CUmipmappedArray hMipmappedArray)
{
    CUresult r = fake_enter("cuMipmappedArrayDestroy");
    if (r == CUDA_SUCCESS && !fake_list_has(&fake_state()->mipmaps, hMipmappedArray))
        r = CUDA_ERROR_INVALID_HANDLE;
    if (r == CUDA_SUCCESS) {
        fake_uncharge(hMipmappedArray->device, hMipmappedArray->charged);
        fake_list_remove(&fake_state()->mipmaps, hMipmappedArray);
        free(hMipmappedArray);
    }
    return fake_leave(r);
}
