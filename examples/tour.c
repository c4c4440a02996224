/*
 * examples/tour.c - lbkit-tour: a guided run of lbkit on an embedded
 * default backend set.
 *
 *   lbkit-tour [--json]
 *
 * Builds a backend set from a dozen backends with mixed weights, publishes
 * a snapshot, and prints it.
 */
#include <stdio.h>
#include <string.h>

#include <lbkit/lbkit.h>

static const struct {
    const char *name;
    uint32_t weight;
} default_backends[] = {
    {"10.0.0.1:8080", 1},  {"10.0.0.2:8080", 1},  {"10.0.0.3:8080", 2},
    {"10.0.0.4:8080", 2},  {"10.0.0.5:8080", 3},  {"10.0.0.6:8080", 3},
    {"10.0.0.7:8080", 4},  {"10.0.0.8:8080", 4},  {"10.0.0.9:8080", 5},
    {"10.0.0.10:8080", 5}, {"10.0.0.11:8080", 8}, {"10.0.0.12:8080", 10},
};
#define N_DEFAULT (sizeof(default_backends) / sizeof(default_backends[0]))

static int die(const char *what, int rc)
{
    fprintf(stderr, "lbkit-tour: %s: %s\n", what, lbk_strerror(rc));
    return 1;
}

int main(int argc, char **argv)
{
    int json = argc > 1 && strcmp(argv[1], "--json") == 0;
    lbk_set *set;
    int rc = lbk_set_create(NULL, &set);
    if (rc < 0)
        return die("creating the set", rc);
    for (size_t i = 0; i < N_DEFAULT; i++) {
        uint32_t slot;
        rc = lbk_set_add(set, default_backends[i].name,
                         default_backends[i].weight, NULL, &slot);
        if (rc < 0)
            return die(default_backends[i].name, rc);
    }
    if ((rc = lbk_set_publish(set)) < 0)
        return die("publishing", rc);
    const lbk_snapshot *snap;
    if ((rc = lbk_set_acquire(set, &snap)) < 0)
        return die("acquiring", rc);
    uint32_t n = lbk_snapshot_count(snap);
    if (json) {
        printf("{\"lbkit\": \"%s\", \"backends\": [", lbk_version_string());
        for (uint32_t i = 0; i < n; i++)
            printf("%s{\"name\": \"%s\", \"weight\": %u}", i ? ", " : "",
                   lbk_backend_name(lbk_snapshot_backend(snap, i)),
                   lbk_snapshot_weight(snap, i));
        printf("]}\n");
    } else {
        printf("lbkit %s - backend set (generation %llu, %u backends, total "
               "weight %u)\n\n",
               lbk_version_string(),
               (unsigned long long)lbk_snapshot_generation(snap), n,
               lbk_snapshot_total_weight(snap));
        printf("  %-4s  %-16s  %6s  %s\n", "slot", "name", "weight", "health");
        for (uint32_t i = 0; i < n; i++) {
            lbk_backend *b = lbk_snapshot_backend(snap, i);
            printf("  %-4u  %-16s  %6u  %s\n", lbk_backend_slot(b),
                   lbk_backend_name(b), lbk_snapshot_weight(snap, i),
                   lbk_backend_eligible(b) ? "up" : "down");
        }
    }
    lbk_snapshot_release(snap);
    lbk_set_free(set);
    return 0;
}
