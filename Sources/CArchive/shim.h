#ifndef BACKSTOP_CARCHIVE_SHIM_H
#define BACKSTOP_CARCHIVE_SHIM_H
#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <sys/xattr.h> /* fsetxattr, for the restore writer (not in Swift's Glibc module) */

/* The AE_IF* file-type macros are casts Swift cannot import. */
static inline unsigned int backstop_ae_ifreg(void) { return AE_IFREG; }
static inline unsigned int backstop_ae_ifdir(void) { return AE_IFDIR; }
static inline unsigned int backstop_ae_iflnk(void) { return AE_IFLNK; }
static inline unsigned int backstop_ae_ifmt(void) { return AE_IFMT; }

/* archive_set_error is variadic; Swift cannot call it. */
static inline void backstop_archive_set_error(struct archive *a, int err, const char *message) {
    archive_set_error(a, err, "%s", message);
}
#endif
