/* models.c — model lists read with an API key (GET /v1/models), shared by every adapter:
 * OpenAI shape ({"object":"list","data":[{id}]}), the 2025 New API/Veloera shape without
 * "object" ({"success":true,"data":[…]}), Anthropic's paged shape (data, has_more,
 * last_id; x-api-key + anthropic-version), and a bare array. */
#include "platforms/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MODELS      20000
#define MAX_MODEL_PAGES 20

bool pf_models_add(struct platform_model_list *l, const char *name)
{
    if (!name || !*name) return true;
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->models[i], name) == 0) return true;
    if (l->n >= MAX_MODELS) return true;
    char **grown = realloc(l->models, (l->n + 1) * sizeof *grown);
    if (!grown) return false;
    l->models = grown;
    if (!(l->models[l->n] = strdup(name))) return false;
    l->n++;
    return true;
}

int pf_parse_model_list(const json_t *root, struct platform_model_list *out)
{
    const json_t *arr = json_is_array(root) ? root : json_object_get(root, "data");
    if (!json_is_array(arr)) arr = json_object_get(root, "models"); /* some proxies */
    if (!json_is_array(arr)) return -1;
    size_t i;
    const json_t *m;
    json_array_foreach(arr, i, m)
    {
        const char *id = json_is_string(m) ? json_string_value(m) : pf_jstr(m, "id");
        if (!id) id = pf_jstr(m, "name");
        if (id && !pf_models_add(out, id)) return -1;
    }
    return 0;
}

/* A model id that can go into a query string as is. */
static bool plain_id(const char *s)
{
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              strchr("._:-", *s)))
            return false;
    return true;
}

static bool ends_with_v1(const char *base)
{
    size_t n = strlen(base);
    return n >= 3 && strcmp(base + n - 3, "/v1") == 0;
}

int pf_key_models(struct pf_ctx *x, bool claude, struct platform_model_list *out)
{
    const char *key = x->c->api_key;
    if (!key || !*key)
        return pf_fail(x->err, PLATFORM_ERR_AUTH, 0, "listing models needs an API key");
    char *auth = NULL;
    if (!claude && asprintf(&auth, "Bearer %s", key) < 0)
        return pf_fail(x->err, PLATFORM_ERR_UNREACHABLE, 0, "out of memory");
    struct http_header h[2];
    size_t nh = 0;
    if (claude) {
        h[nh++] = (struct http_header){SLICE_LIT("x-api-key"), slice_from(key)};
        h[nh++] = (struct http_header){SLICE_LIT("anthropic-version"), SLICE_LIT("2023-06-01")};
    } else {
        h[nh++] = (struct http_header){SLICE_LIT("Authorization"), slice_from(auth)};
    }
    const char *base_path = ends_with_v1(x->base) ? "/models" : "/v1/models";
    bool saved = x->send_bearer;
    x->send_bearer = false; /* the key, not the management token */
    char *after = NULL;
    int rc = 0;
    for (int page = 0; page < MAX_MODEL_PAGES; page++) {
        char path[512];
        if (claude)
            snprintf(path, sizeof path, "%s?limit=1000%s%s", base_path, after ? "&after_id=" : "",
                     after ? after : "");
        else
            snprintf(path, sizeof path, "%s", base_path);
        struct fetch_response resp;
        if (pf_http(x, "GET", path, NULL, h, nh, &resp) != 0) {
            rc = -1;
            break;
        }
        json_t *root, *data;
        rc = pf_envelope(resp.body.p, resp.body.n, resp.status, "GET /v1/models", &root, &data,
                         x->err);
        fetch_response_free(&resp);
        if (rc != 0) break;
        if (pf_parse_model_list(root, out) != 0) {
            json_decref(root);
            rc = pf_fail(x->err, PLATFORM_ERR_BAD_RESPONSE, x->last_status,
                         "GET /v1/models: the answer is not a model list");
            break;
        }
        const char *last = pf_jstr(root, "last_id");
        bool more = claude && pf_jbool(root, "has_more") && last && *last && strlen(last) < 200 &&
                    plain_id(last) && (!after || strcmp(after, last) != 0);
        free(after);
        after = more ? strdup(last) : NULL;
        json_decref(root);
        if (!after) break;
    }
    free(after);
    x->send_bearer = saved;
    free(auth);
    if (rc != 0) platform_model_list_free(out);
    return rc;
}
