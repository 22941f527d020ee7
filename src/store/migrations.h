/* migrations.h — the embedded, numbered schema migrations (generated at build time from
 * src/store/migrations/<backend>/NNN_name.sql, in file-name order, NULL-terminated). */
#ifndef METARELAY_STORE_MIGRATIONS_H
#define METARELAY_STORE_MIGRATIONS_H

struct migration {
    const char *name; /* "001_init.sql" */
    const char *sql;
};

extern const struct migration sqlite_migrations[];

#endif
