/* args.h — the one command-line parser of the `bitnet` tool: each subcommand describes its
 * options in a table (short name, long names, kind, range, help, destination) and calls
 * args_parse. Accepted forms: `-x V`, `--long V`, `--long=V`; several long names per option
 * (llama.cpp's names next to ours); every numeric value is range-checked (finite, within
 * [lo, hi]); -h/--help prints help generated from the tables; an unknown option is an error with
 * a suggestion. Errors are one line on stderr naming the command, the option and what it needs.
 * Not: a getopt replacement for the library (the library never parses argv). */
#ifndef BITNET_ARGS_H
#define BITNET_ARGS_H
#include <stdio.h>
#include <stddef.h>

typedef enum {
    ARG_END = 0, /* terminates a table */
    ARG_FLAG,    /* int *: set to 1; takes no value */
    ARG_INT,     /* int *: integer in [lo, hi] */
    ARG_FLOAT,   /* float *: finite number in [lo, hi] (hi = INFINITY: no upper bound) */
    ARG_STR,     /* const char **: any string, or one of `choices` ("a|b|c") when set */
    ARG_LIST,    /* arg_ints *: comma-separated integers, each in [lo, hi] */
    ARG_FUNC,    /* fn(dst, value, err, errlen): 0 on success, else writes the reason to err */
} arg_kind;

enum { ARG_OPEN_LO = 1 }; /* flags: the lower bound is exclusive: (lo, hi] */

typedef struct { int n; int v[32]; } arg_ints;

typedef struct arg_opt {
    char short_name;     /* 'm' for -m, or 0 */
    const char *names;   /* long names without "--", '|'-separated ("n-predict|predict"), or NULL */
    arg_kind kind;
    double lo, hi;       /* ARG_INT / ARG_FLOAT / ARG_LIST range */
    void *dst;
    const char *meta;    /* value placeholder in the help ("N", "DIR"); NULL: "V" */
    const char *help;    /* one line; "(default ...)" is appended from *dst unless it says "default" */
    const char *choices; /* ARG_STR: allowed values "a|b|c", or NULL */
    int (*fn)(void *dst, const char *value, char *err, size_t errlen);
    int flags;
    int *seen;           /* if set: becomes 1 when the option is given (to tell given from default) */
} arg_opt;

/* Table entries (designated initializers: fields not named are 0). S: short name char or 0. */
#define OPT_FLAG(S, NAMES, DST, HELP) {.short_name = S, .names = NAMES, .kind = ARG_FLAG, .dst = DST, .help = HELP}
#define OPT_INT(S, NAMES, LO, HI, DST, META, HELP) \
    {.short_name = S, .names = NAMES, .kind = ARG_INT, .lo = LO, .hi = HI, .dst = DST, .meta = META, .help = HELP}
#define OPT_FLOAT(S, NAMES, LO, HI, DST, META, HELP) \
    {.short_name = S, .names = NAMES, .kind = ARG_FLOAT, .lo = LO, .hi = HI, .dst = DST, .meta = META, .help = HELP}
#define OPT_FLOAT_GT(S, NAMES, LO, HI, DST, META, HELP) /* lower bound exclusive */ \
    {.short_name = S, .names = NAMES, .kind = ARG_FLOAT, .lo = LO, .hi = HI, .dst = DST, .meta = META, .help = HELP, .flags = ARG_OPEN_LO}
#define OPT_STR(S, NAMES, DST, META, HELP) {.short_name = S, .names = NAMES, .kind = ARG_STR, .dst = DST, .meta = META, .help = HELP}
#define OPT_CHOICE(S, NAMES, DST, CHOICES, HELP) \
    {.short_name = S, .names = NAMES, .kind = ARG_STR, .dst = DST, .choices = CHOICES, .help = HELP}
#define OPT_LIST(S, NAMES, LO, HI, DST, META, HELP) \
    {.short_name = S, .names = NAMES, .kind = ARG_LIST, .lo = LO, .hi = HI, .dst = DST, .meta = META, .help = HELP}
#define OPT_FUNC(S, NAMES, FN, DST, META, HELP) \
    {.short_name = S, .names = NAMES, .kind = ARG_FUNC, .fn = FN, .dst = DST, .meta = META, .help = HELP}
#define OPT_END {.kind = ARG_END}

/* A command's options: up to 4 titled tables and the synopsis printed first by -h. */
typedef struct args_spec {
    const char *cmd;            /* "run": messages read "bitnet run: ..." */
    const char *usage;          /* synopsis and notes, printed verbatim before the options */
    const arg_opt *tables[4];   /* NULL-terminated list of ARG_END-terminated tables */
    const char *titles[4];      /* a heading per table ("options", "sampling") */
    int max_pos;                /* positional arguments allowed (0: none) */
} args_spec;

enum { ARGS_OK = 0, ARGS_HELP = 1, ARGS_ERR = -1 };

/* Parse argv[1..argc) (argv[0] is the command name). Options fill their dst; up to max_pos
 * positional arguments go to pos[] (count in *npos; pos/npos may be NULL when max_pos is 0);
 * "--" ends the options. -h/--help anywhere (as an option, not a value) prints the help to
 * stdout and returns ARGS_HELP before anything is parsed. On an error prints one line and
 * returns ARGS_ERR; the caller exits with 0 for ARGS_HELP and 2 for ARGS_ERR. */
int args_parse(const args_spec *s, int argc, char **argv, const char **pos, int *npos);
/* Print the help of s (synopsis, then each table with its defaults from the current dst values). */
void args_usage(const args_spec *s, FILE *f);
/* Print "bitnet CMD: <message>" to stderr and return ARGS_ERR (for checks after parsing). */
int args_error(const args_spec *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#endif
