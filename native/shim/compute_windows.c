/* compute_windows.c: the layout of a period and the windows' part of the gate's decision, pure
 * (compute_windows.h). */
#include "compute_windows.h"

int gs_windows_lay_out(const gs_window_holder *h, int n, uint64_t period_ns, gs_window *win)
{
    if (n < 0 || n > GS_WINDOWS_MAX)
        return -1;
    /* the holders by priority, high first; stable: the holders' order within a level */
    int order[GS_WINDOWS_MAX];
    for (int k = 0; k < n; k++) {
        int j = k;
        while (j > 0 && h[order[j - 1]].priority < h[k].priority) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = k;
    }
    uint64_t off = 0, remaining = period_ns;
    for (int a = 0; a < n;) {
        int b = a;
        while (b < n && h[order[b]].priority == h[order[a]].priority)
            b++;
        uint64_t share_sum = 0;
        uint64_t len[GS_WINDOWS_MAX] = {0};
        for (int i = a; i < b; i++) {
            const gs_window_holder *x = &h[order[i]];
            if (x->shares) {
                share_sum += x->share_ppm;
                continue;
            }
            uint64_t want = period_ns / GS_WINDOWS_PPM * x->share_ppm;
            len[i] = want < remaining ? want : remaining;
            remaining -= len[i];
        }
        if (share_sum > 0) {
            uint64_t pool = remaining;
            for (int i = a; i < b; i++) {
                uint64_t s = h[order[i]].share_ppm;
                if (h[order[i]].shares) {
                    len[i] = pool / share_sum * s + (pool % share_sum) * s / share_sum;
                    remaining -= len[i];
                }
            }
        }
        for (int i = a; i < b; i++) {
            win[order[i]] = (gs_window){.off = off, .len = len[i]};
            off += len[i];
        }
        a = b;
    }
    return 0;
}

bool gs_windows_confined(const gs_window_holder *self, gs_compute_accounting accounting)
{
    return accounting == GS_ACCOUNT_THROUGHPUT && !self->shares && self->share_ppm < GS_WINDOWS_PPM;
}

gs_window_gate gs_windows_gate(gs_window own, bool confined, const gs_window *others, int n, uint64_t phase,
                               uint64_t period_ns)
{
    for (int i = 0; i < n; i++)
        if (phase >= others[i].off && phase - others[i].off < others[i].len)
            return (gs_window_gate){.wait = others[i].off + others[i].len - phase, .room = 0};
    uint64_t room = UINT64_MAX;
    if (confined) {
        if (own.len == 0)
            return (gs_window_gate){.wait = period_ns - phase, .room = 0};
        if (phase < own.off)
            return (gs_window_gate){.wait = own.off - phase, .room = 0};
        if (phase - own.off >= own.len)
            return (gs_window_gate){.wait = period_ns - phase + own.off, .room = 0};
        room = own.off + own.len - phase;
    }
    for (int i = 0; i < n; i++) {
        if (others[i].len == 0)
            continue;
        uint64_t to = others[i].off > phase ? others[i].off - phase : period_ns - phase + others[i].off;
        if (to < room)
            room = to;
    }
    return (gs_window_gate){.wait = 0, .room = room};
}
