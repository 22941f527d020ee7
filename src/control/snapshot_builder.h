/* snapshot_builder.h — builds the routing snapshot from the store (control side). */
#ifndef METARELAY_CONTROL_SNAPSHOT_BUILDER_H
#define METARELAY_CONTROL_SNAPSHOT_BUILDER_H

#include <stdint.h>

#include "routing/snapshot.h"
#include "store/store.h"

/* Loads every usable channel and builds a snapshot (caller owns it until published).
 * NULL on a database error or out of memory (logged). */
struct routing_snapshot *snapshot_load(db_t *db, uint64_t version);

#endif
