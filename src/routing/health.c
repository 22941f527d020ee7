/* health.c — per-account runtime health registry and the core cooldown policy
 * (see health.h). The registry is a mutex-protected open list used only when a snapshot
 * is built (control thread); the records themselves are read and updated lock-free. */
#include "routing/health.h"

#include <pthread.h>
#include <stdlib.h>

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static struct channel_health **registry;
static size_t registry_n, registry_cap;
static unsigned cooldown_base_ms = 5000;
static unsigned cooldown_max_ms = 300000;

void health_set_policy(unsigned base_ms, unsigned max_ms)
{
    cooldown_base_ms = base_ms;
    cooldown_max_ms = max_ms < base_ms ? base_ms : max_ms;
}

struct channel_health *health_for_account(int64_t account_id)
{
    struct channel_health *found = NULL;
    pthread_mutex_lock(&registry_mu);
    for (size_t i = 0; i < registry_n; i++)
        if (registry[i]->account_id == account_id) {
            found = registry[i];
            break;
        }
    if (!found) {
        if (registry_n == registry_cap) {
            size_t cap = registry_cap ? registry_cap * 2 : 64;
            struct channel_health **grown = realloc(registry, cap * sizeof *grown);
            if (!grown) goto out;
            registry = grown;
            registry_cap = cap;
        }
        found = aligned_alloc(64, sizeof *found);
        if (!found) goto out;
        *found = (struct channel_health){.account_id = account_id};
        registry[registry_n++] = found;
    }
out:
    pthread_mutex_unlock(&registry_mu);
    return found;
}

void health_record_success(struct channel_health *h)
{
    atomic_fetch_add(&h->successes, 1);
    atomic_store(&h->consecutive_failures, 0);
    atomic_store(&h->cooldown_until_ns, 0);
}

void health_record_failure(struct channel_health *h, uint64_t now_ns)
{
    atomic_fetch_add(&h->failures, 1);
    unsigned streak = atomic_fetch_add(&h->consecutive_failures, 1) + 1;
    uint64_t ms = cooldown_base_ms;
    for (unsigned i = 1; i < streak && ms < cooldown_max_ms; i++) ms *= 2;
    if (ms > cooldown_max_ms) ms = cooldown_max_ms;
    atomic_store(&h->cooldown_until_ns, now_ns + ms * 1000000ull);
}

bool health_is_cooling(const struct channel_health *h, uint64_t now_ns)
{
    uint64_t until = atomic_load(&h->cooldown_until_ns);
    return until != 0 && until > now_ns;
}

void health_registry_free(void)
{
    pthread_mutex_lock(&registry_mu);
    for (size_t i = 0; i < registry_n; i++) free(registry[i]);
    free(registry);
    registry = NULL;
    registry_n = registry_cap = 0;
    pthread_mutex_unlock(&registry_mu);
}
