/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The one header applications include: #include <tkms.h> with pkg-config tkms-1. */
#include "tkms-error.h"
#include "tkms-key-version-info.h"
#include "tkms-key-info.h"
#include "tkms-client.h"
