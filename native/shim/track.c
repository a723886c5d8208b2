/*
 * track.c: what each pointer or handle took (device, kind, bytes, context), so a free
 * gives back exactly the bytes its allocation took. A hash map in 64 shards, each with its
 * own lock, so threads allocating at once rarely meet; keys are (space, value) because a
 * VMM handle and a device pointer may be equal numbers.
 */
#include <pthread.h>
#include <stdlib.h>

#include "state.h"
#include "track.h"

#define SHARDS 64u

typedef struct node {
    struct node *next;
    uint64_t key;
    gs_space space;
    gs_track_entry e;
} node;

typedef struct shard {
    pthread_mutex_t lock;
    node **buckets;
    size_t nbuckets; /* power of two, or 0 before the first insert */
    size_t count;
} shard;

static struct {
    shard shards[SHARDS];
    pthread_once_t once;
} T = {.once = PTHREAD_ONCE_INIT};

static void init(void)
{
    for (unsigned i = 0; i < SHARDS; i++)
        pthread_mutex_init(&T.shards[i].lock, NULL);
}

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static shard *shard_of(uint64_t h)
{
    (void)pthread_once(&T.once, init);
    return &T.shards[h % SHARDS];
}

/* Doubles the bucket array; false when out of memory (the map still works, only slower). */
static bool grow(shard *s)
{
    size_t n = s->nbuckets ? s->nbuckets * 2 : 16;
    node **b = calloc(n, sizeof *b);
    if (b == NULL)
        return s->nbuckets > 0;
    for (size_t i = 0; i < s->nbuckets; i++) {
        node *x = s->buckets[i];
        while (x != NULL) {
            node *next = x->next;
            size_t j = (size_t)(mix(x->key ^ ((uint64_t)x->space << 60)) / SHARDS) & (n - 1);
            x->next = b[j];
            b[j] = x;
            x = next;
        }
    }
    free(s->buckets);
    s->buckets = b;
    s->nbuckets = n;
    return true;
}

bool gs_track_put(gs_space space, uint64_t key, const gs_track_entry *e)
{
    uint64_t h = mix(key ^ ((uint64_t)space << 60));
    shard *s = shard_of(h);
    node *x = malloc(sizeof *x);
    if (x == NULL)
        return false;
    *x = (node){.key = key, .space = space, .e = *e};
    pthread_mutex_lock(&s->lock);
    bool ok = (s->count < s->nbuckets * 2) || grow(s);
    if (ok) {
        size_t j = (size_t)(h / SHARDS) & (s->nbuckets - 1);
        x->next = s->buckets[j];
        s->buckets[j] = x;
        s->count++;
    }
    pthread_mutex_unlock(&s->lock);
    if (!ok)
        free(x);
    return ok;
}

bool gs_track_take(gs_space space, uint64_t key, gs_track_entry *out)
{
    uint64_t h = mix(key ^ ((uint64_t)space << 60));
    shard *s = shard_of(h);
    node *found = NULL;
    pthread_mutex_lock(&s->lock);
    if (s->nbuckets > 0) {
        node **p = &s->buckets[(size_t)(h / SHARDS) & (s->nbuckets - 1)];
        for (; *p != NULL; p = &(*p)->next) {
            if ((*p)->key == key && (*p)->space == space) {
                found = *p;
                *p = found->next;
                s->count--;
                break;
            }
        }
    }
    pthread_mutex_unlock(&s->lock);
    if (found == NULL)
        return false;
    *out = found->e;
    free(found);
    return true;
}

void gs_track_drop_ctx(CUcontext ctx)
{
    if (ctx == NULL)
        return;
    for (unsigned i = 0; i < SHARDS; i++) {
        shard *s = shard_of(i);
        s = &T.shards[i];
        node *dropped = NULL;
        pthread_mutex_lock(&s->lock);
        for (size_t b = 0; b < s->nbuckets; b++) {
            node **p = &s->buckets[b];
            while (*p != NULL) {
                if ((*p)->e.ctx == ctx) {
                    node *x = *p;
                    *p = x->next;
                    s->count--;
                    x->next = dropped;
                    dropped = x;
                } else {
                    p = &(*p)->next;
                }
            }
        }
        pthread_mutex_unlock(&s->lock);
        while (dropped != NULL) {
            node *next = dropped->next;
            gs_release(dropped->e.dev, dropped->e.kind, dropped->e.bytes);
            free(dropped);
            dropped = next;
        }
    }
}
