/*
 * options.h - parsing the command line into struct settings (options.c).
 */
#ifndef OPTIONS_H
#define OPTIONS_H

/* Fill settings from argv (after settings_init()).  Returns 0 to start,
 * 1 when -h, -V or -i printed what was asked (exit 0), -1 on a bad
 * option (a message is on stderr). */
int options_parse(int argc, char **argv);

#endif
