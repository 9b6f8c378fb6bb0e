/* tests/helpers/json.c - recursive-descent JSON parser for test vectors. */
#include "json.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const char *p, *end;
  int err;
} jp;

static void ws(jp *s) {
  while (s->p < s->end && isspace((unsigned char)*s->p)) s->p++;
}

static json *jnew(json_type t) {
  json *j = calloc(1, sizeof *j);
  if (!j) abort();
  j->type = t;
  return j;
}

static void push(json *j, json *child, char *key) {
  j->items = realloc(j->items, (j->n + 1) * sizeof *j->items);
  if (!j->items) abort();
  j->items[j->n] = child;
  if (j->type == JSON_OBJ) {
    j->keys = realloc(j->keys, (j->n + 1) * sizeof *j->keys);
    if (!j->keys) abort();
    j->keys[j->n] = key;
  }
  j->n++;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static char *parse_string(jp *s, size_t *outlen) {
  if (s->p >= s->end || *s->p != '"') { s->err = 1; return NULL; }
  s->p++;
  size_t cap = 16, len = 0;
  char *out = malloc(cap);
  if (!out) abort();
  while (s->p < s->end && *s->p != '"') {
    unsigned cp = (unsigned char)*s->p++;
    if (cp == '\\') {
      if (s->p >= s->end) break;
      char e = *s->p++;
      switch (e) {
      case 'n': cp = '\n'; break;
      case 't': cp = '\t'; break;
      case 'r': cp = '\r'; break;
      case 'b': cp = '\b'; break;
      case 'f': cp = '\f'; break;
      case 'u': {
        cp = 0;
        for (int i = 0; i < 4; i++) {
          int v = s->p < s->end ? hexval(*s->p++) : -1;
          if (v < 0) { s->err = 1; free(out); return NULL; }
          cp = cp * 16 + (unsigned)v;
        }
        break;
      }
      default: cp = (unsigned char)e;
      }
    }
    char tmp[4];
    size_t n = 0;
    if (cp < 0x80) tmp[n++] = (char)cp;
    else if (cp < 0x800) { tmp[n++] = (char)(0xc0 | (cp >> 6)); tmp[n++] = (char)(0x80 | (cp & 0x3f)); }
    else { tmp[n++] = (char)(0xe0 | (cp >> 12)); tmp[n++] = (char)(0x80 | ((cp >> 6) & 0x3f)); tmp[n++] = (char)(0x80 | (cp & 0x3f)); }
    if (len + n + 1 > cap) { cap = cap * 2 + n; out = realloc(out, cap); if (!out) abort(); }
    memcpy(out + len, tmp, n);
    len += n;
  }
  if (s->p >= s->end) { s->err = 1; free(out); return NULL; }
  s->p++;
  out[len] = 0;
  if (outlen) *outlen = len;
  return out;
}

static json *parse_value(jp *s, int depth) {
  ws(s);
  if (s->p >= s->end || depth > 64) { s->err = 1; return NULL; }
  char c = *s->p;
  if (c == '{' || c == '[') {
    json *j = jnew(c == '{' ? JSON_OBJ : JSON_ARR);
    s->p++;
    ws(s);
    if (s->p < s->end && *s->p == (c == '{' ? '}' : ']')) { s->p++; return j; }
    for (;;) {
      char *key = NULL;
      if (c == '{') {
        ws(s);
        key = parse_string(s, NULL);
        if (!key) { json_free(j); return NULL; }
        ws(s);
        if (s->p >= s->end || *s->p != ':') { free(key); json_free(j); s->err = 1; return NULL; }
        s->p++;
      }
      json *v = parse_value(s, depth + 1);
      if (!v) { free(key); json_free(j); return NULL; }
      push(j, v, key);
      ws(s);
      if (s->p < s->end && *s->p == ',') { s->p++; continue; }
      if (s->p < s->end && *s->p == (c == '{' ? '}' : ']')) { s->p++; return j; }
      json_free(j);
      s->err = 1;
      return NULL;
    }
  }
  if (c == '"') {
    json *j = jnew(JSON_STR);
    j->str = parse_string(s, &j->str_len);
    if (!j->str) { free(j); return NULL; }
    return j;
  }
  if (!strncmp(s->p, "true", 4)) { s->p += 4; json *j = jnew(JSON_BOOL); j->num = 1; return j; }
  if (!strncmp(s->p, "false", 5)) { s->p += 5; return jnew(JSON_BOOL); }
  if (!strncmp(s->p, "null", 4)) { s->p += 4; return jnew(JSON_NULL); }
  char *endp;
  double d = strtod(s->p, &endp);
  if (endp == s->p) { s->err = 1; return NULL; }
  s->p = endp;
  json *j = jnew(JSON_NUM);
  j->num = d;
  return j;
}

json *json_parse(const char *text, size_t len) {
  jp s = {text, text + len, 0};
  json *j = parse_value(&s, 0);
  if (!j || s.err) { json_free(j); return NULL; }
  return j;
}

json *json_load_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) { fprintf(stderr, "cannot open %s\n", path); return NULL; }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) { fclose(f); free(buf); return NULL; }
  fclose(f);
  json *j = json_parse(buf, (size_t)n);
  if (!j) fprintf(stderr, "cannot parse %s\n", path);
  free(buf);
  return j;
}

json *json_load_vector(const char *name) {
  const char *dir = getenv("LP2P_TEST_VECTORS");
#ifdef LP2P_TEST_VECTORS_DIR
  if (!dir) dir = LP2P_TEST_VECTORS_DIR;
#endif
  if (!dir) dir = "tests/vectors";
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  return json_load_file(path);
}

void json_free(json *j) {
  if (!j) return;
  for (size_t i = 0; i < j->n; i++) {
    json_free(j->items[i]);
    if (j->keys) free(j->keys[i]);
  }
  free(j->items);
  free(j->keys);
  free(j->str);
  free(j);
}

json *json_get(const json *obj, const char *key) {
  if (!obj || obj->type != JSON_OBJ) return NULL;
  for (size_t i = 0; i < obj->n; i++)
    if (!strcmp(obj->keys[i], key)) return obj->items[i];
  return NULL;
}

json *json_at(const json *arr, size_t i) {
  if (!arr || (arr->type != JSON_ARR && arr->type != JSON_OBJ) || i >= arr->n) return NULL;
  return arr->items[i];
}

const char *json_str(const json *obj, const char *key) {
  json *v = json_get(obj, key);
  return v && v->type == JSON_STR ? v->str : NULL;
}

uint8_t *hex_to_bytes(const char *hex, size_t *len) {
  size_t n = strlen(hex);
  uint8_t *out = malloc(n / 2 + 1);
  if (!out) abort();
  size_t o = 0;
  for (size_t i = 0; i < n;) {
    if (isspace((unsigned char)hex[i])) { i++; continue; }
    if (i + 1 >= n) { free(out); return NULL; }
    int a = hexval(hex[i]), b = hexval(hex[i + 1]);
    if (a < 0 || b < 0) { free(out); return NULL; }
    out[o++] = (uint8_t)(a * 16 + b);
    i += 2;
  }
  *len = o;
  return out;
}

uint8_t *json_hex(const json *obj, const char *key, size_t *len) {
  const char *s = json_str(obj, key);
  return s ? hex_to_bytes(s, len) : NULL;
}
