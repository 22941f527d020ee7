/* temporary */
#include "platform.h"
static void nf(struct pf_req *r)
{
    pf_invalid_url(r);
}
static bool au(struct pf_req *r, bool q)
{
    (void)q;
    pf_invalid_url(r);
    return false;
}
static void re(struct pf_req *r, int k, const char *d)
{
    pf_lineage_relay_error(r, k, d, "x", 403);
}
static void rm(struct pf_req *r, const struct pf_token *t)
{
    (void)t;
    pf_invalid_url(r);
}
const struct pf_platform pf_one_api = {
    .kind = PF_ONE_API, .auth = au, .relay_error = re, .relay_models = rm, .not_found = nf};
const struct pf_platform pf_one_hub = {
    .kind = PF_ONE_HUB, .auth = au, .relay_error = re, .relay_models = rm, .not_found = nf};
const struct pf_platform pf_done_hub = {
    .kind = PF_DONE_HUB, .auth = au, .relay_error = re, .relay_models = rm, .not_found = nf};
const struct pf_platform pf_sub2api = {
    .kind = PF_SUB2API, .auth = au, .relay_error = re, .relay_models = rm, .not_found = nf};
