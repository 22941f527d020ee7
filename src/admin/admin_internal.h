/* admin_internal.h — what the admin API's per-resource files share: building answers,
 * reading request bodies and query strings, validating common fields. Private to
 * src/admin. */
#ifndef METARELAY_ADMIN_ADMIN_INTERNAL_H
#define METARELAY_ADMIN_ADMIN_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "admin/admin_api.h"
#include "store/repo.h"

/* Fills `resp` with `j` serialized (steals the reference). */
void admin_reply(struct admin_response *resp, int status, json_t *j);
/* {"success":false,"message":…} with `status`. */
void admin_fail(struct admin_response *resp, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* {"success":true} */
void admin_ok(struct admin_response *resp);
/* Answers a repository failure: NOT_FOUND → 404, CONFLICT → 409, INVALID → 400,
 * ERROR → 500, each with `what` in the message. */
void admin_fail_store(struct admin_response *resp, enum store_status st, const char *what);

/* Parses the body as a JSON object (duplicate keys rejected). NULL after answering 400
 * (with jansson's byte offset) when it is not one. Caller owns the result (json_decref). */
json_t *admin_body_object(const struct admin_request *req, struct admin_response *resp);

/* The percent-decoded value of `name` in the query string, copied into `out`: 1 when
 * found, 0 when absent, -1 when present but longer than cap - 1 bytes. */
int admin_query_get(struct slice query, const char *name, char *out, size_t cap);

/* A JSON string of `s` (NULL → null); bytes that are not valid UTF-8 become '?', so a
 * bad byte in stored data never breaks an answer. New reference. */
json_t *admin_jstr(const char *s);
/* ISO-8601 UTC with milliseconds of a wall-clock time in ms, as a JSON string. */
json_t *admin_jtime_ms(int64_t ms);

/* Calls ctx->routing_changed when set. */
void admin_routing_changed(const struct admin_ctx *ctx);

/* Resource handlers. `id` is the numeric path id (0 when the path has none). */
void admin_sites(const struct admin_ctx *ctx, const struct admin_request *req, int64_t id,
                 struct admin_response *resp);
void admin_accounts(const struct admin_ctx *ctx, const struct admin_request *req, int64_t id,
                    struct admin_response *resp);
void admin_account_models(const struct admin_ctx *ctx, int64_t account_id,
                          struct admin_response *resp);
void admin_models_check(const struct admin_ctx *ctx, int64_t account_id,
                        struct admin_response *resp);
/* Control plane (api_sites.c, api_accounts.c, api_tokens.c, api_checkin.c, api_events.c). */
void admin_sites_detect(const struct admin_ctx *ctx, const struct admin_request *req,
                        struct admin_response *resp);
void admin_accounts_login(const struct admin_ctx *ctx, const struct admin_request *req,
                          struct admin_response *resp);
void admin_accounts_verify_token(const struct admin_ctx *ctx, const struct admin_request *req,
                                 struct admin_response *resp);
void admin_account_balance(const struct admin_ctx *ctx, int64_t id, struct admin_response *resp);
/* GET /api/accounts/:id/balance-history?limit= → {items:[{balance, used, recordedAt}], todaySpend}.
 */
void admin_account_balance_history(const struct admin_ctx *ctx, const struct admin_request *req,
                                   int64_t id, struct admin_response *resp);
void admin_account_rebind(const struct admin_ctx *ctx, const struct admin_request *req, int64_t id,
                          struct admin_response *resp);
/* /api/account-tokens[/:id[/value|/default]], /sync/:accountId, /sync-all */
void admin_account_tokens(const struct admin_ctx *ctx, const struct admin_request *req, int64_t id,
                          const char *action, struct admin_response *resp);
/* /api/checkin/trigger[/:id], /logs, /schedule */
void admin_checkin(const struct admin_ctx *ctx, const struct admin_request *req, const char *what,
                   int64_t id, struct admin_response *resp);
void admin_events(const struct admin_ctx *ctx, const struct admin_request *req,
                  struct admin_response *resp);
/* The job context of an admin thread (its connection and HTTP client, the process's
 * zone); routing changes are reported by admin_job_done. */
struct job_ctx;
void admin_job_ctx(const struct admin_ctx *ctx, struct job_ctx *jc);
void admin_job_done(const struct admin_ctx *ctx, const struct job_ctx *jc);
/* "wait" of a query string or body: true for 1/true. */
bool admin_wants_wait(const struct admin_request *req, json_t *body);

void admin_proxy_logs(const struct admin_ctx *ctx, const struct admin_request *req,
                      struct admin_response *resp);
/* Routes and channels (api_routes.c). */
void admin_routes(const struct admin_ctx *ctx, const struct admin_request *req, int64_t id,
                  struct admin_response *resp);
void admin_route_channels(const struct admin_ctx *ctx, const struct admin_request *req,
                          int64_t route_id, struct admin_response *resp);
void admin_channel(const struct admin_ctx *ctx, const struct admin_request *req, int64_t id,
                   struct admin_response *resp);
void admin_route_cooldown_clear(const struct admin_ctx *ctx, int64_t route_id,
                                struct admin_response *resp);
void admin_routes_rebuild(const struct admin_ctx *ctx, struct admin_response *resp);
void admin_routes_decision(const struct admin_ctx *ctx, const struct admin_request *req,
                           struct admin_response *resp);

#endif
