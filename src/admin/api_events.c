/* api_events.c — GET /api/events: the program log (check-ins, balance failures, token
 * syncs, expired accounts), newest first; filters type, accountId, limit, offset. */
#include <stdlib.h>
#include <string.h>

#include "admin/admin_internal.h"
#include "store/events.h"

void admin_events(const struct admin_ctx *ctx, const struct admin_request *req,
                  struct admin_response *resp)
{
    char type[64], buf[32];
    int has_type = admin_query_get(req->query, "type", type, sizeof type);
    unsigned long long limit = 50, offset = 0, acc = 0;
    if (has_type < 0 ||
        (admin_query_get(req->query, "limit", buf, sizeof buf) == 1 &&
         (!slice_to_u64(slice_from(buf), &limit) || limit == 0 || limit > 500)) ||
        (admin_query_get(req->query, "offset", buf, sizeof buf) == 1 &&
         (!slice_to_u64(slice_from(buf), &offset) || offset > 100000000)) ||
        (admin_query_get(req->query, "accountId", buf, sizeof buf) == 1 &&
         !slice_to_u64(slice_from(buf), &acc))) {
        admin_fail(resp, 400, "type must be short, limit 1-500, offset and accountId numbers");
        return;
    }
    struct event *ev;
    size_t n;
    enum store_status st = events_list(ctx->db, has_type == 1 && type[0] ? type : NULL,
                                       (int64_t)acc, (int)limit, (int)offset, &ev, &n);
    if (st != STORE_OK) {
        admin_fail_store(resp, st, "events");
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(
            arr, json_pack("{s:I, s:o, s:o, s:o, s:o, s:b, s:o, s:o, s:o}", "id",
                           (json_int_t)ev[i].id, "type", admin_jstr(ev[i].type), "title",
                           admin_jstr(ev[i].title), "message", admin_jstr(ev[i].message), "level",
                           admin_jstr(ev[i].level), "read", ev[i].read, "relatedId",
                           ev[i].related_id ? json_integer(ev[i].related_id) : json_null(),
                           "relatedType", admin_jstr(ev[i].related_type), "createdAt",
                           admin_jstr(ev[i].created_at)));
    events_free(ev, n);
    admin_reply(resp, 200, arr);
}
