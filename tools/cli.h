/* cli.h — shared pieces of the `bitnet` command-line tool. Each subcommand lives in its own
 * tools/cmd_*.c as `int cmd_NAME(int argc, char **argv)` (argv[0] is the subcommand name) and
 * returns the process exit code. Subcommands not built yet are weak stubs in tools/bitnet.c. */
#ifndef BITNET_CLI_H
#define BITNET_CLI_H
#include "bitnet.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Print "bitnet: <what>: <last error>" to stderr and return 1. */
int cli_fail(const char *what);
/* Parse "1,2,3" into a malloc'd array; returns count or -1 on a malformed list. */
int cli_parse_ids(const char *s, int32_t **out);
/* Parse an int / float option value, printing a message on garbage (returns 0 then). For the
 * commands not yet on tools/args.h (train, export, tokenizer-train); new code uses args_parse. */
int cli_int(const char *opt, const char *v, int lo, int hi, int *out);
int cli_float(const char *opt, const char *v, float *out);
/* Load a model, showing a progress line (layers, rate, ETA) on stderr when it is a terminal. */
bitnet_status cli_load_model(const char *dir, bitnet_model **out);
/* The same on a device (bitnet_model_params.device: NULL/"cpu", "cuda", "cuda:N"). */
bitnet_status cli_load_model_on(const char *dir, const char *device, bitnet_model **out);
/* bitnet_tokenizer_load, printing the tokenizer's notice (bitnet_tokenizer_notice) once to stderr. */
bitnet_status cli_load_tokenizer(const char *path, bitnet_tokenizer **out);
/* Small file helpers for the tools (the library's own are internal). cli_read_file: the whole
 * file into a malloc'd NUL-terminated buffer (len may be NULL); 0 on success, else -1 with
 * errno set (a folder is EISDIR). cli_path_join: malloc'd "dir/name". */
int cli_read_file(const char *path, char **out, size_t *len);
char *cli_path_join(const char *dir, const char *name);
int cli_file_exists(const char *path);
int cli_is_dir(const char *path);
/* Monotonic seconds. */
double cli_time(void);
/* Peak resident set size of this process in bytes. */
size_t cli_peak_rss(void);

int cmd_run(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_tokenize_file(int argc, char **argv);
int cmd_tokenizer_train(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_eval(int argc, char **argv);
#endif
