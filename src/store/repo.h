/* repo.h — the result codes every repository function of the store returns. */
#ifndef METARELAY_STORE_REPO_H
#define METARELAY_STORE_REPO_H

enum store_status {
    STORE_OK = 0,
    STORE_NOT_FOUND, /* no row with that id / key */
    STORE_CONFLICT,  /* a unique constraint (e.g. sites (platform, url)) */
    STORE_INVALID,   /* another constraint: unknown parent id, value out of domain */
    STORE_ERROR,     /* the database failed (logged) */
};

/* A short English name of the status ("not found"), for messages. */
const char *store_status_str(enum store_status st);

#endif
