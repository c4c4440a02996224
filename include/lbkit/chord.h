/*
 * lbkit/chord.h - Chord lookup: which node owns this key, with no central
 * registry (Stoica et al., SIGCOMM 2001; Liben-Nowell et al., ToN 2003).
 *
 * An lbk_chord is a simulation of a Chord ring: N nodes on an m-bit
 * identifier circle, each with its own finger table, predecessor and list of
 * r successors, and nothing else.  A lookup starts at any live node and is
 * forwarded node to node by the paper's "closest preceding finger" rule until
 * it reaches the key's predecessor, whose successor owns the key; the result
 * says who owns the key, which nodes the query visited and how many timeouts
 * it would have suffered on failed nodes.  Nodes join through any live node,
 * leave gracefully or fail silently, and the paper's maintenance (stabilize,
 * notify, fix_fingers, check_predecessor) runs in rounds the caller drives.
 * Choose Chord to study or reproduce decentralised lookup; when one process
 * knows every backend, ring.h, maglev.h, jump.h or hrw.h answer the same
 * question in O(1)..O(log N) local work with no hops at all.
 * Cost: lookup O(log N) hops, each O(m + r) compares, no allocation; bulk
 * build O(N log N); memory 8 + 4m + 4r + 10 bytes per node (m = 64, r = 8:
 * 306 bytes; lbk_chord_bytes() reports it).
 *
 * Identifiers.  Ids and keys live in [0, 2^m).  A name or key is mapped to
 * the TOP m bits of lbk_hash(bytes, seed) (lbk_chord_key_id), so with m = 64
 * the id is the hash itself and smaller m keep the hash's best bits.
 *
 * Nodes.  Nodes are numbered by index 0, 1, 2, ... in the order they were
 * given (lbk_chord_create: the order of ids[]; lbk_chord_build: the
 * snapshot's order, so node i is lbk_snapshot_backend(snap, i)); each join
 * takes the next index.  Indices are never reused: a node that left or
 * failed keeps its index, in state LBK_CHORD_LEFT or LBK_CHORD_FAILED, so
 * stale fingers that still name it keep meaning "a node that no longer
 * answers".  The ids of live and failed nodes are unique; a failed node's id
 * becomes free once lbk_chord_maintain() has run (the ring forgot it), a
 * departed node's id at once.
 *
 * Hop convention.  Following the paper, a lookup's path runs from the start
 * node to the key's predecessor (the node whose successor owns the key), and
 * its hop count is the number of forwarding steps on that path: path length
 * minus one.  It is 0 when the start node is itself the predecessor, and
 * about 1/2 log2 N on average with correct fingers.  The final answer from
 * the predecessor to the caller is not counted.  A lookup of a key equal to
 * the start node's own id is routed like any other (the paper's algorithm
 * does not consult the predecessor), so it goes around the ring.
 *
 * Failures.  A contact with a node that failed or left costs one timeout;
 * the contacting node then tries its next best entry (fingers and successor
 * list for forwarding, the successor list for the answer).  A lookup fails
 * with LBK_ETIMEDOUT only when some node on the path finds every entry of
 * its successor list dead.
 *
 * Rounds.  lbk_chord_maintain(c, k) runs k rounds; in one round every live
 * node, in increasing id order, runs check_predecessor, then stabilize (which
 * calls notify on its successor), then fix_fingers, which refreshes ONE
 * finger (the paper's "next"), cycling 1..m.  How many rounds suffice:
 * start from a correct ring and let J nodes join (each through any live
 * node) and fewer than r nodes leave, in any order, with no failures and
 * more than 2r nodes on the ring throughout (so no node can find its whole
 * successor list departed).  Then J + 1 rounds make every successor and
 * predecessor correct, and J + 1 + max(m, r) rounds make every finger,
 * successor list and predecessor exactly right.  With joins only, J may be
 * replaced by g, the most joins that landed between the same two
 * consecutive nodes of the starting ring.  (fix_fingers needs m rounds to
 * visit every finger once, and a successor list propagates one entry per
 * round against the ring's order.)  tests/test_chord.c runs exactly these
 * numbers of rounds on random histories and checks every table.  Without
 * the conditions Chord itself gives no bound: a node whose every successor
 * left before it stabilized is cut off for good, as in the paper.
 *
 * Thread safety: lookups and the read-only accessors may run concurrently
 * from any number of threads on one object; join, leave, fail and maintain
 * modify it and need the caller to exclude every other call on that object.
 */
#ifndef LBKIT_CHORD_H
#define LBKIT_CHORD_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lbk_chord lbk_chord;

/* "No node": an unknown predecessor, or "start a new ring" for join. */
#define LBK_CHORD_NONE UINT32_MAX

/* Longest successor list. */
#define LBK_CHORD_SUCC_MAX 64u

/* Most nodes one ring can ever number (joins included). */
#define LBK_CHORD_NODES_MAX (1u << 30)

/* A node's state. */
typedef enum lbk_chord_state {
    LBK_CHORD_LIVE = 0,   /* answers and forwards */
    LBK_CHORD_FAILED = 1, /* stopped silently (lbk_chord_fail) */
    LBK_CHORD_LEFT = 2    /* departed gracefully (lbk_chord_leave) */
} lbk_chord_state;

typedef struct lbk_chord_options {
    unsigned bits;      /* m, identifier bits: 1..64 (default 64) */
    unsigned succ_list; /* r, successor list length: 1..LBK_CHORD_SUCC_MAX
                           (default 8) */
    uint64_t seed;      /* seed of lbk_hash for names and keys (default 0) */
} lbk_chord_options;

/* What one lookup found. */
typedef struct lbk_chord_result {
    uint32_t owner;    /* index of the live node that owns the key */
    uint32_t hops;     /* forwarding hops from the start to the key's
                          predecessor (see "Hop convention") */
    uint32_t timeouts; /* contacts with failed or departed nodes */
    uint32_t path_len; /* nodes on the path, start included: hops + 1 */
} lbk_chord_result;

/*
 * lbk_chord_options_init - fill opts with the defaults: bits 64,
 * succ_list 8, seed 0.  NULL is a no-op.
 * Thread safety: safe from any thread.
 */
LBK_API void lbk_chord_options_init(lbk_chord_options *opts);

/*
 * lbk_chord_create - a ring of n nodes with the given ids, every finger
 * table, successor list and predecessor built correct at once in
 * O(N log N).  Node i has id ids[i].  n may be 0 (an empty ring that the
 * first lbk_chord_join() starts).
 * opts: NULL for the defaults.  alloc: NULL for malloc/free, else copied.
 * Errors: LBK_EINVAL (out NULL, ids NULL with n > 0, half-set allocator),
 * LBK_ERANGE (bits not in 1..64, succ_list not in 1..LBK_CHORD_SUCC_MAX, an
 * id >= 2^bits, n > LBK_CHORD_NODES_MAX), LBK_EEXIST (two equal ids),
 * LBK_ENOMEM.
 * Thread safety: safe from any thread (touches nothing shared).
 */
LBK_API int lbk_chord_create(const lbk_chord_options *opts, const uint64_t *ids,
                             size_t n, const lbk_allocator *alloc,
                             lbk_chord **out);

/*
 * lbk_chord_build - a ring whose node i is the snapshot's backend i, with
 * id lbk_chord_key_id() of its name (every listed backend, whatever its
 * weight or health: mark nodes down with lbk_chord_fail()).  The ring keeps
 * a reference to snap (lbk_chord_backend() returns its backends) and
 * releases it in lbk_chord_free().  Built as by lbk_chord_create().
 * Errors: LBK_EINVAL (snap or out NULL, half-set allocator), LBK_ERANGE
 * (bits or succ_list out of range), LBK_EEXIST (two names hash to the same
 * id: likely only for small bits), LBK_ENOMEM.
 * Thread safety: safe from any thread holding a reference to snap.
 */
LBK_API int lbk_chord_build(const lbk_snapshot *snap,
                            const lbk_chord_options *opts,
                            const lbk_allocator *alloc, lbk_chord **out);

/*
 * lbk_chord_free - free the ring (and release its snapshot).  NULL is a
 * no-op.
 * Thread safety: no other call on c may be running or follow.
 */
LBK_API void lbk_chord_free(lbk_chord *c);

/*
 * lbk_chord_key_id - the identifier of len bytes at key: the top m bits of
 * lbk_hash(key, len, seed).  Node names are mapped the same way.
 * Errors: LBK_EINVAL (c or id_out NULL, key NULL with len > 0).
 * Thread safety: any thread, concurrently with lookups.
 */
LBK_API int lbk_chord_key_id(const lbk_chord *c, const void *key, size_t len,
                             uint64_t *id_out);

/*
 * lbk_chord_lookup - route a lookup of key_id from node `from` through the
 * nodes' own tables (see "Hop convention" and "Failures" above).  When path
 * is not NULL, the first min(path_cap, path_len) nodes of the path (start
 * first, the key's predecessor last) are written there.  Never allocates.
 * Errors: LBK_EINVAL (c or out NULL, path NULL with path_cap > 0),
 * LBK_ENOENT (from is not a node index), LBK_ESTATE (node `from` failed or
 * left), LBK_ERANGE (key_id >= 2^m), LBK_ETIMEDOUT (every entry of some
 * path node's successor list is dead: the lookup cannot finish).  On error
 * neither *out nor path is written.
 * Thread safety: any thread, concurrently with other lookups and reads.
 */
LBK_API int lbk_chord_lookup(const lbk_chord *c, uint32_t from, uint64_t key_id,
                             uint32_t *path, size_t path_cap,
                             lbk_chord_result *out);

/*
 * lbk_chord_owner - the true owner of key_id: the first live node clockwise
 * from key_id, by global knowledge (binary search over the sorted ring, then
 * past failed nodes).  The answer a central registry would give; lookups
 * must agree with it.
 * Errors: LBK_EINVAL (c or node_out NULL), LBK_ERANGE (key_id >= 2^m),
 * LBK_ENOBACKEND (no live node).
 * Thread safety: any thread, concurrently with lookups and reads.
 */
LBK_API int lbk_chord_owner(const lbk_chord *c, uint64_t key_id,
                            uint32_t *node_out);

/*
 * lbk_chord_join - a new node with identifier id joins through live node
 * `via` (the paper's join: via looks up id's successor s; the new node takes
 * s as successor, copies s's successor list, points every finger at s and
 * has no predecessor; the rest of the ring learns of it by maintenance).
 * via = LBK_CHORD_NONE starts a new ring and is allowed only when no node is
 * live.  *node_out receives the new node's index.
 * Errors: LBK_EINVAL (c or node_out NULL), LBK_ERANGE (id >= 2^m, or
 * LBK_CHORD_NODES_MAX nodes numbered), LBK_ENOENT (via is not a node),
 * LBK_ESTATE (via not live; or via = LBK_CHORD_NONE while a node is live),
 * LBK_EEXIST (a live or failed node has this id), LBK_ETIMEDOUT (via's
 * lookup of id failed), LBK_ENOMEM.
 * Thread safety: one thread, no other call on c running.
 */
LBK_API int lbk_chord_join(lbk_chord *c, uint64_t id, uint32_t via,
                           uint32_t *node_out);

/*
 * lbk_chord_leave - node departs gracefully: it gives its predecessor its
 * successor list (dropping itself from it) and its successor its
 * predecessor, then stops answering.
 * Errors: LBK_EINVAL (c NULL), LBK_ENOENT (not a node index), LBK_ESTATE
 * (the node already failed or left).
 * Thread safety: one thread, no other call on c running.
 */
LBK_API int lbk_chord_leave(lbk_chord *c, uint32_t node);

/*
 * lbk_chord_fail - node stops answering, telling no one.  Others learn by
 * timeouts and maintenance.
 * Errors: LBK_EINVAL (c NULL), LBK_ENOENT (not a node index), LBK_ESTATE
 * (the node already failed or left).
 * Thread safety: one thread, no other call on c running.
 */
LBK_API int lbk_chord_fail(lbk_chord *c, uint32_t node);

/*
 * lbk_chord_maintain - run `rounds` maintenance rounds (see "Rounds").
 * Never allocates.  Afterwards failed nodes are forgotten by the global
 * ring (their ids may be joined again).
 * Errors: LBK_EINVAL (c NULL).
 * Thread safety: one thread, no other call on c running.
 */
LBK_API int lbk_chord_maintain(lbk_chord *c, uint32_t rounds);

/* Number of node indices ever given out (0 for NULL).
 * Thread safety: any thread, concurrently with lookups. */
LBK_API uint32_t lbk_chord_node_count(const lbk_chord *c);

/* Number of live nodes (0 for NULL).
 * Thread safety: any thread, concurrently with lookups. */
LBK_API uint32_t lbk_chord_live_count(const lbk_chord *c);

/* Identifier bits m (0 for NULL).
 * Thread safety: any thread, concurrently with lookups. */
LBK_API unsigned lbk_chord_bits(const lbk_chord *c);

/* Successor list length r (0 for NULL).
 * Thread safety: any thread, concurrently with lookups. */
LBK_API unsigned lbk_chord_succ_list_len(const lbk_chord *c);

/*
 * lbk_chord_bytes - memory the ring holds now, in bytes: the object and its
 * per-node arrays at their current capacity (0 for NULL).
 * Thread safety: any thread, concurrently with lookups.
 */
LBK_API size_t lbk_chord_bytes(const lbk_chord *c);

/*
 * lbk_chord_node - a node's identifier and state.  Either out-pointer may
 * be NULL.
 * Errors: LBK_EINVAL (c NULL), LBK_ENOENT (not a node index).
 * Thread safety: any thread, concurrently with lookups.
 */
LBK_API int lbk_chord_node(const lbk_chord *c, uint32_t node, uint64_t *id_out,
                           lbk_chord_state *state_out);

/*
 * lbk_chord_find - the index of the live or failed node with identifier id.
 * Errors: LBK_EINVAL (c or node_out NULL), LBK_ENOENT (no such node).
 * Thread safety: any thread, concurrently with lookups.
 */
LBK_API int lbk_chord_find(const lbk_chord *c, uint64_t id, uint32_t *node_out);

/*
 * lbk_chord_finger - node's finger i, 1 <= i <= m, as it holds it now
 * (finger 1 is its successor; correct tables hold successor(n + 2^(i-1))).
 * Errors: LBK_EINVAL (c or finger_out NULL), LBK_ENOENT (not a node
 * index), LBK_ERANGE (i out of 1..m).
 * Thread safety: any thread, concurrently with lookups.
 */
LBK_API int lbk_chord_finger(const lbk_chord *c, uint32_t node, unsigned i,
                             uint32_t *finger_out);

/*
 * lbk_chord_successor - entry j (0 <= j < r) of node's successor list as it
 * holds it now; entry 0 is its successor.  On rings with at most r live
 * nodes the list wraps around (and may name the node itself).
 * Errors: LBK_EINVAL (c or succ_out NULL), LBK_ENOENT (not a node index),
 * LBK_ERANGE (j >= r).
 * Thread safety: any thread, concurrently with lookups.
 */
LBK_API int lbk_chord_successor(const lbk_chord *c, uint32_t node, unsigned j,
                                uint32_t *succ_out);

/*
 * lbk_chord_predecessor - node's predecessor as it holds it now, or
 * LBK_CHORD_NONE when it knows none.
 * Errors: LBK_EINVAL (c or pred_out NULL), LBK_ENOENT (not a node index).
 * Thread safety: any thread, concurrently with lookups.
 */
LBK_API int lbk_chord_predecessor(const lbk_chord *c, uint32_t node,
                                  uint32_t *pred_out);

/*
 * lbk_chord_backend - the backend node i stands for when the ring was built
 * by lbk_chord_build(); NULL for joined nodes, rings from
 * lbk_chord_create(), bad indices and c NULL.  Valid while c is.
 * Thread safety: any thread, concurrently with lookups.
 */
LBK_API lbk_backend *lbk_chord_backend(const lbk_chord *c, uint32_t node);

#ifdef __cplusplus
}
#endif

#endif /* LBKIT_CHORD_H */
