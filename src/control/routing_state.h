/* routing_state.h — the control side of the routing engine: its configuration from the
 * environment (read once at start), and the runtime health that survives a restart (loaded
 * before the first snapshot, saved periodically and at stop, through the store). */
#ifndef METARELAY_CONTROL_ROUTING_STATE_H
#define METARELAY_CONTROL_ROUTING_STATE_H

#include <stdint.h>

#include "store/store.h"

/* Reads the routing variables (see docs/routing.md), sets the health policy, the weighted
 * parameters and the sticky-session table. 0, or -1 after printing which variable is
 * invalid. Call before any thread starts. */
int routing_config_from_env(void);
/* ROUTING_FALLBACK_UNIT_COST (default 1). */
double routing_fallback_unit_cost(void);
/* ROUTING_HEALTH_SAVE_SEC in milliseconds (default 30 s). */
unsigned routing_health_save_interval_ms(void);

/* Restores the saved health (before the first snapshot is built). Returns rows restored or
 * -1 on a database error (logged; starting without history is fine). */
int routing_health_restore(db_t *db);
/* Saves the current health (control thread). 0 or -1 (logged). */
int routing_health_persist(db_t *db);
/* Frees the routing engine's process-wide state (at exit, after every thread stopped). */
void routing_state_shutdown(void);

#endif
