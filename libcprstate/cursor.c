/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cursor.c - bounds-checked sequential reads (placeholder, filled below). */
#include "cprs-internal.h"
