/* events.h — the program log the user reads (events: check-ins, balances, token syncs,
 * expired credentials) and the check-in history (checkin_logs). Writes commit before
 * returning. */
#ifndef METARELAY_STORE_EVENTS_H
#define METARELAY_STORE_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/repo.h"
#include "store/store.h"

struct event {
    int64_t id;
    char *type; /* "checkin", "balance", "token", "status", "models", … */
    char *title;
    char *message;
    char *level; /* "info" | "warning" | "error" */
    bool read;
    int64_t related_id; /* 0 none */
    char *related_type; /* "account", "site", or NULL */
    char *created_at;
};
void events_free(struct event *e, size_t n);

/* Appends an event (level NULL = "info"). */
enum store_status events_add(db_t *db, const char *type, const char *level, const char *title,
                             const char *message, int64_t related_id, const char *related_type);
/* Newest first; `type` NULL = every type; related_id > 0 filters on it. */
enum store_status events_list(db_t *db, const char *type, int64_t related_id, int limit, int offset,
                              struct event **out, size_t *n);

struct checkin_log {
    int64_t id;
    int64_t account_id;
    char *status; /* "success" | "failed" | "skipped" */
    char *message;
    double reward; /* < 0 unknown */
    char *checkin_day;
    char *created_at;
};
void checkin_logs_free(struct checkin_log *l, size_t n);

/* Appends a check-in log row; a success also stamps accounts.last_checkin_at. reward < 0
 * = unknown. */
enum store_status checkin_logs_add(db_t *db, int64_t account_id, const char *status,
                                   const char *message, double reward, const char *day);
/* Whether the account has a success logged for `day`. */
enum store_status checkin_done_on(db_t *db, int64_t account_id, const char *day, bool *done);
/* Newest first; account_id > 0 filters. *total receives the count of matching rows. */
enum store_status checkin_logs_list(db_t *db, int64_t account_id, int limit, int offset,
                                    struct checkin_log **out, size_t *n, int64_t *total);

#endif
