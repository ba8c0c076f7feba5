#ifndef BACKSTOP_CARCHIVE_SHIM_H
#define BACKSTOP_CARCHIVE_SHIM_H
#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

/* The AE_IF* file-type macros are casts Swift cannot import. */
static inline unsigned int backstop_ae_ifreg(void) { return AE_IFREG; }
static inline unsigned int backstop_ae_ifdir(void) { return AE_IFDIR; }
static inline unsigned int backstop_ae_iflnk(void) { return AE_IFLNK; }
static inline unsigned int backstop_ae_ifmt(void) { return AE_IFMT; }
#endif
