/* args.c — the table-driven argument parser of the `bitnet` tool (see args.h). */
#include "args.h"
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int args_error(const args_spec *s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bitnet %s: ", s->cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return ARGS_ERR;
}

/* Does the '|'-separated list `names` contain name[0..n)? */
static int has_name(const char *names, const char *name, size_t n) {
    for (const char *p = names; p && *p;) {
        const char *e = strchr(p, '|');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && !strncmp(p, name, n)) return 1;
        p = e ? e + 1 : NULL;
    }
    return 0;
}

static const arg_opt *find_long(const args_spec *s, const char *name, size_t n) {
    for (int t = 0; t < 4 && s->tables[t]; t++)
        for (const arg_opt *o = s->tables[t]; o->kind != ARG_END; o++)
            if (has_name(o->names, name, n)) return o;
    return NULL;
}

static const arg_opt *find_short(const args_spec *s, char c) {
    for (int t = 0; t < 4 && s->tables[t]; t++)
        for (const arg_opt *o = s->tables[t]; o->kind != ARG_END; o++)
            if (o->short_name && o->short_name == c) return o;
    return NULL;
}

static void fmt_num(char *b, size_t n, double v) {
    if (isinf(v)) snprintf(b, n, "%sinf", v < 0 ? "-" : "");
    else snprintf(b, n, "%.10g", v);
}

/* "an integer in [0, 16]" / "a finite number in (0, 1]" / "a finite number >= 0" */
static void range_text(const arg_opt *o, char *b, size_t n) {
    char lo[32], hi[32];
    fmt_num(lo, sizeof lo, o->lo); fmt_num(hi, sizeof hi, o->hi);
    const char *what = o->kind == ARG_FLOAT ? "a finite number" : o->kind == ARG_LIST ? "a comma-separated list of integers" : "an integer";
    const char *each = o->kind == ARG_LIST ? ", each" : "";
    if (isinf(o->lo) && isinf(o->hi)) snprintf(b, n, "%s", what);
    else if (isinf(o->hi)) snprintf(b, n, "%s%s %s %s", what, each, o->flags & ARG_OPEN_LO ? ">" : ">=", lo);
    else snprintf(b, n, "%s%s in %c%s, %s]", what, each, o->flags & ARG_OPEN_LO ? '(' : '[', lo, hi);
}

static int in_range(const arg_opt *o, double x) {
    return (o->flags & ARG_OPEN_LO ? x > o->lo : x >= o->lo) && x <= o->hi;
}

static int parse_int(const arg_opt *o, const char *v, const char *end_ok, long long *out) {
    char *end; errno = 0;
    long long x = strtoll(v, &end, 10);
    if (end == v || errno || (end_ok ? !strchr(end_ok, *end) : *end != 0) || !in_range(o, (double)x)) return 0;
    *out = x; return 1;
}

/* Store value v into o's destination (name: the option as typed, for messages); prints the error and returns ARGS_ERR when v is bad. */
static int set_value(const args_spec *s, const arg_opt *o, const char *name, const char *v) {
    char range[128];
    range_text(o, range, sizeof range);
    switch (o->kind) {
    case ARG_INT: {
        long long x;
        if (!parse_int(o, v, NULL, &x)) return args_error(s, "%s needs %s, got '%s'", name, range, v);
        *(int *)o->dst = (int)x;
        return ARGS_OK;
    }
    case ARG_FLOAT: {
        char *end; errno = 0;
        double x = strtod(v, &end);
        if (end == v || *end || !isfinite(x) || !in_range(o, x) || !isfinite((float)x))
            return args_error(s, "%s needs %s, got '%s'", name, range, v);
        *(float *)o->dst = (float)x;
        return ARGS_OK;
    }
    case ARG_STR:
        if (o->choices && !has_name(o->choices, v, strlen(v)))
            return args_error(s, "%s must be one of %s, got '%s'", name, o->choices, v);
        *(const char **)o->dst = v;
        return ARGS_OK;
    case ARG_LIST: {
        arg_ints *l = o->dst;
        l->n = 0;
        for (const char *p = v;;) {
            long long x;
            if (l->n == (int)(sizeof l->v / sizeof l->v[0]) || !parse_int(o, p, ",", &x))
                return args_error(s, "%s needs %s (at most %d), got '%s'", name, range, (int)(sizeof l->v / sizeof l->v[0]), v);
            l->v[l->n++] = (int)x;
            p = strchr(p, ',');
            if (!p) break;
            p++;
        }
        return ARGS_OK;
    }
    case ARG_FUNC: {
        char err[256] = "bad value";
        if (o->fn(o->dst, v, err, sizeof err)) return args_error(s, "%s: %s", name, err);
        return ARGS_OK;
    }
    default:
        return args_error(s, "%s takes no value", name);
    }
}

/* Edit distance, for "did you mean"; a and b are short option names. */
static int edit_distance(const char *a, size_t na, const char *b, size_t nb) {
    int row[64];
    if (na > 62 || nb > 62) return 99;
    for (size_t j = 0; j <= nb; j++) row[j] = (int)j;
    for (size_t i = 1; i <= na; i++) {
        int diag = row[0]; row[0] = (int)i;
        for (size_t j = 1; j <= nb; j++) {
            int up = row[j], best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best; diag = up;
        }
    }
    return row[nb];
}

/* The long name closest to name[0..n) (within a third of its length, at least 2), or NULL. */
static const char *suggest(const args_spec *s, const char *name, size_t n, size_t *len) {
    const char *best = NULL; int bd = (int)(n / 3 > 2 ? n / 3 : 2) + 1;
    for (int t = 0; t < 4 && s->tables[t]; t++)
        for (const arg_opt *o = s->tables[t]; o->kind != ARG_END; o++)
            for (const char *p = o->names; p && *p;) {
                const char *e = strchr(p, '|');
                size_t l = e ? (size_t)(e - p) : strlen(p);
                int d = edit_distance(name, n, p, l);
                if (d < bd) { bd = d; best = p; *len = l; }
                p = e ? e + 1 : NULL;
            }
    return best;
}

static int unknown(const args_spec *s, const char *a) {
    const char *name = a + strspn(a, "-");
    size_t n = strcspn(name, "=");
    size_t l = 0;
    const char *sug = n > 1 ? suggest(s, name, n, &l) : NULL;
    if (sug) return args_error(s, "unknown option '%s' (did you mean --%.*s?); see bitnet %s -h", a, (int)l, sug, s->cmd);
    return args_error(s, "unknown option '%s'; see bitnet %s -h", a, s->cmd);
}

static const arg_opt HELP = {.short_name = 'h', .names = "help", .kind = ARG_FLAG, .help = "print this help"};

/* Resolve argv[i] as an option: *o the option, *val an inline "=value" or NULL. 0: not an
 * option (a positional), 1: an option, ARGS_ERR: unknown (message printed when report). */
static int lookup(const args_spec *s, const char *a, const arg_opt **o, const char **val, int report) {
    *o = NULL; *val = NULL;
    if (a[0] != '-' || !a[1]) return 0;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) { *o = &HELP; return 1; }
    if (a[1] == '-') {
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t n = eq ? (size_t)(eq - name) : strlen(name);
        if ((*o = find_long(s, name, n))) { *val = eq ? eq + 1 : NULL; return 1; }
    } else if (!a[2] && (*o = find_short(s, a[1]))) return 1;
    return report ? unknown(s, a) : ARGS_ERR;
}

int args_parse(const args_spec *s, int argc, char **argv, const char **pos, int *npos) {
    if (npos) *npos = 0;
    /* -h first, skipping values, so that the help shows the defaults and `-p -h` is a prompt */
    for (int i = 1; i < argc && strcmp(argv[i], "--"); i++) {
        const arg_opt *o; const char *val;
        if (lookup(s, argv[i], &o, &val, 0) != 1) continue;
        if (o == &HELP) { args_usage(s, stdout); return ARGS_HELP; }
        if (o->kind != ARG_FLAG && !val) i++;
    }
    int dashdash = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const arg_opt *o = NULL; const char *val = NULL;
        if (!dashdash && !strcmp(a, "--")) { dashdash = 1; continue; }
        int r = dashdash ? 0 : lookup(s, a, &o, &val, 1);
        if (r == ARGS_ERR) return ARGS_ERR;
        if (r == 0) {
            if (!pos || *npos >= s->max_pos)
                return s->max_pos ? args_error(s, "too many arguments ('%s'); see bitnet %s -h", a, s->cmd)
                                  : args_error(s, "unexpected argument '%s'; see bitnet %s -h", a, s->cmd);
            pos[(*npos)++] = a;
            continue;
        }
        char name[64]; /* the option as typed, without "=value" */
        snprintf(name, sizeof name, "%.*s", (int)strcspn(a, "="), a);
        if (o->seen) *o->seen = 1;
        if (o->kind == ARG_FLAG) {
            if (val) return args_error(s, "%s takes no value (got '%s')", name, a);
            *(int *)o->dst = 1;
            continue;
        }
        if (!val) {
            if (i + 1 >= argc) return args_error(s, "%s needs a value (%s)", name, o->meta ? o->meta : "V");
            val = argv[++i];
        }
        if (set_value(s, o, name, val) != ARGS_OK) return ARGS_ERR;
    }
    return ARGS_OK;
}

/* The default shown after an option's help: the current value of its destination. */
static void default_text(const arg_opt *o, char *b, size_t n) {
    b[0] = 0;
    if (!o->dst || (o->help && strstr(o->help, "default"))) return;
    switch (o->kind) {
    case ARG_INT: snprintf(b, n, " (default %d)", *(int *)o->dst); break;
    case ARG_FLOAT: snprintf(b, n, " (default %g)", *(float *)o->dst); break;
    case ARG_STR: if (*(const char **)o->dst) snprintf(b, n, " (default %s)", *(const char **)o->dst); break;
    case ARG_LIST: {
        const arg_ints *l = o->dst;
        size_t k = (size_t)snprintf(b, n, " (default ");
        for (int i = 0; i < l->n && k < n; i++) k += (size_t)snprintf(b + k, n - k, i ? ",%d" : "%d", l->v[i]);
        if (k < n) snprintf(b + k, n - k, ")");
        break;
    }
    default: break;
    }
}

void args_usage(const args_spec *s, FILE *f) {
    fputs(s->usage, f);
    for (int t = 0; t < 4 && s->tables[t]; t++) {
        fprintf(f, "%s:\n", s->titles[t] ? s->titles[t] : "options");
        for (const arg_opt *o = s->tables[t]; o->kind != ARG_END; o++) {
            char left[160]; size_t k = 0;
            k += (size_t)snprintf(left + k, sizeof left - k, "  ");
            if (o->short_name) k += (size_t)snprintf(left + k, sizeof left - k, "-%c%s", o->short_name, o->names ? ", " : "");
            for (const char *p = o->names; p && *p && k < sizeof left;) {
                const char *e = strchr(p, '|');
                int len = (int)(e ? (size_t)(e - p) : strlen(p));
                k += (size_t)snprintf(left + k, sizeof left - k, "--%.*s%s", len, p, e ? ", " : "");
                p = e ? e + 1 : NULL;
            }
            if (o->kind != ARG_FLAG && k < sizeof left)
                k += (size_t)snprintf(left + k, sizeof left - k, " %s", o->meta ? o->meta : o->choices ? o->choices : "V");
            char def[128];
            default_text(o, def, sizeof def);
            if (k < 30) fprintf(f, "%-30s %s%s\n", left, o->help ? o->help : "", def);
            else fprintf(f, "%s\n%-30s %s%s\n", left, "", o->help ? o->help : "", def);
        }
    }
}
