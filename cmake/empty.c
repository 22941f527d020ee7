/* Keeps every layer library non-empty while its folder has no source yet. */
typedef int metarelay_empty_translation_unit;
