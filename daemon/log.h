/* SPDX-License-Identifier: MIT
 *
 * log.h -- the daemon's log: one line per event on stderr.
 */
#ifndef AD_LOG_H
#define AD_LOG_H

typedef enum ad_log_level {
    AD_LOG_ERROR = 0,
    AD_LOG_WARN = 1,
    AD_LOG_INFO = 2,
    AD_LOG_DEBUG = 3,
} ad_log_level_t;

/* Parses "error", "warn" (or "warning"), "info", "debug".
 * Returns 0 and *ret_level, or -EINVAL leaving it untouched. */
int ad_log_level_parse(const char *text, ad_log_level_t *ret_level);

/* The name ad_log_level_parse() accepts for level ("info", ...). */
const char *ad_log_level_name(ad_log_level_t level);

/* Sets and reads the process-wide threshold (default AD_LOG_INFO). */
void ad_log_set_level(ad_log_level_t level);
ad_log_level_t ad_log_get_level(void);

/* True when a message at level would be written; lets callers skip building
 * expensive arguments. */
int ad_log_enabled(ad_log_level_t level);

/* Writes "arenad[PID]: <level>: <message>\n" to stderr as one write(2) when
 * level is at or above the threshold. The message is cut at 1 KiB; control
 * characters in it are printed as '?', so a client's name cannot forge lines. */
void ad_log(ad_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The text of an errno value, positive or negative ("Connection reset by
 * peer"); thread-safe, unlike strerror(). Never NULL. */
const char *ad_errstr(int error);

/* The description of a signal ("Terminated"); thread-safe. Never NULL. */
const char *ad_sigstr(int signum);

#endif
