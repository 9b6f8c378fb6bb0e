/* tests/helpers/json.h - a small JSON reader for the test vectors (test code
 * only; not part of the library). Parses a whole document into a tree. */
#ifndef LP2P_TEST_JSON_H
#define LP2P_TEST_JSON_H
#include <stddef.h>
#include <stdint.h>

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUM, JSON_STR, JSON_ARR, JSON_OBJ } json_type;

typedef struct json {
  json_type type;
  double num;          /* JSON_NUM, JSON_BOOL (0/1) */
  char *str;           /* JSON_STR: decoded, NUL-terminated */
  size_t str_len;
  size_t n;            /* JSON_ARR / JSON_OBJ: number of children */
  struct json **items; /* children */
  char **keys;         /* JSON_OBJ: keys, parallel to items */
} json;

/* Parse a file; NULL (and a message on stderr) on failure. */
json *json_load_file(const char *path);
/* Load tests/vectors/<name> (directory from LP2P_TEST_VECTORS). */
json *json_load_vector(const char *name);
json *json_parse(const char *text, size_t len);
void json_free(json *j);

/* Object member or NULL. */
json *json_get(const json *obj, const char *key);
/* Array element or NULL. */
json *json_at(const json *arr, size_t i);
/* String member or NULL. */
const char *json_str(const json *obj, const char *key);
/* Decode a hex string member into a malloc'd buffer; *len set. NULL if absent/bad. */
uint8_t *json_hex(const json *obj, const char *key, size_t *len);
/* Decode hex text; malloc'd. */
uint8_t *hex_to_bytes(const char *hex, size_t *len);

#endif
