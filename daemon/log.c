/* SPDX-License-Identifier: MIT
 *
 * log.c -- one line per event on stderr.
 *
 * stderr is what systemd's journal and a foreground terminal both collect, so
 * the daemon has no log files and no syslog dependency. Each line goes out in
 * a single write(2), so lines from a crash handler or a forked child never
 * interleave mid-line. Text that came from clients (names) is printed through
 * a filter that turns control characters into '?'. Loop thread only (the level
 * is a plain global).
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static ad_log_level_t log_threshold = AD_LOG_INFO;

static const char *const log_names[] = {"error", "warn", "info", "debug"};

int ad_log_level_parse(const char *text, ad_log_level_t *ret_level)
{
    if (!text || !ret_level)
        return -EINVAL;
    for (int i = 0; i <= (int)AD_LOG_DEBUG; i++) {
        if (strcmp(text, log_names[i]) == 0) {
            *ret_level = (ad_log_level_t)i;
            return 0;
        }
    }
    if (strcmp(text, "warning") == 0) {
        *ret_level = AD_LOG_WARN;
        return 0;
    }
    return -EINVAL;
}

const char *ad_log_level_name(ad_log_level_t level)
{
    if ((int)level < 0 || level > AD_LOG_DEBUG)
        return "?";
    return log_names[level];
}

void ad_log_set_level(ad_log_level_t level)
{
    log_threshold = level;
}

ad_log_level_t ad_log_get_level(void)
{
    return log_threshold;
}

int ad_log_enabled(ad_log_level_t level)
{
    return level <= log_threshold;
}

void ad_log(ad_log_level_t level, const char *fmt, ...)
{
    if (!ad_log_enabled(level))
        return;
    char line[1200];
    int head =
        snprintf(line, sizeof(line), "arenad[%ld]: %s: ", (long)getpid(), ad_log_level_name(level));
    if (head < 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    /* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): false positive */
    int n = vsnprintf(line + head, 1024, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t len = (size_t)head + ((size_t)n < 1024 ? (size_t)n : 1023);
    for (size_t i = (size_t)head; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        if (c < 0x20 || c == 0x7f)
            line[i] = '?';
    }
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

const char *ad_errstr(int error)
{
    const char *text = strerrordesc_np(error < 0 ? -error : error);
    return text ? text : "unknown error";
}

const char *ad_sigstr(int signum)
{
    const char *text = sigdescr_np(signum);
    return text ? text : "unknown signal";
}
