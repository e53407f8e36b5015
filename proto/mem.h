/*
 * proto/mem.h — allocation that never returns NULL.
 *
 * Out of memory aborts the process inside these functions (after a log
 * line); in return every size that comes from the network is capped before
 * it reaches an allocation. Any thread.
 */
#ifndef BG_PROTO_MEM_H
#define BG_PROTO_MEM_H

#include <stddef.h>

void *bg_xmalloc(size_t n);
void *bg_xcalloc(size_t count, size_t size);
void *bg_xrealloc(void *p, size_t n);
char *bg_xstrdup(const char *s);
char *bg_xstrndup(const char *s, size_t n);

/* Bounded copy: copies at most cap-1 bytes of src and always NUL-terminates
 * when cap > 0. Returns the length of src, so truncation is (ret >= cap). */
size_t bg_strlcpy(char *dst, const char *src, size_t cap);

#endif
