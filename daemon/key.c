/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-key"

/* A key and its versions as the engine sees them, the key types, and the key-name rule. */

#include "key.h"

#include <string.h>

#include "crypto.h"

static const struct {
	const gchar *name;
	const gchar *protection;
	TkmsTpmObjectKind kind;
} key_types[] = {
	[TKMS_KEY_TYPE_AES_256_GCM] = {"aes-256-gcm", "sealed", TKMS_TPM_OBJECT_SEALED},
	[TKMS_KEY_TYPE_HMAC_SHA256] = {"hmac-sha256", "tpm", TKMS_TPM_OBJECT_HMAC},
	[TKMS_KEY_TYPE_ECDSA_P256] = {"ecdsa-p256", "tpm", TKMS_TPM_OBJECT_ECC_P256},
	[TKMS_KEY_TYPE_RSA_2048] = {"rsa-2048", "tpm", TKMS_TPM_OBJECT_RSA_2048},
	/* the password itself is the sealed object's data, as an AES key's material is */
	[TKMS_KEY_TYPE_PASSWORD] = {"password", "sealed", TKMS_TPM_OBJECT_SEALED},
};

static const gchar *const rotation_steps[] = {
	[TKMS_ROTATION_STEP_NONE] = "none",
	[TKMS_ROTATION_STEP_SET] = "set",
	[TKMS_ROTATION_STEP_TEST] = "test",
	[TKMS_ROTATION_STEP_FINISH] = "finish",
	[TKMS_ROTATION_STEP_ROLLBACK] = "rollback",
};

static const gchar *const charsets[] = {
	[TKMS_CHARSET_ALNUM] = "alnum",
	[TKMS_CHARSET_ALNUM_SYMBOLS] = "alnum-symbols",
	[TKMS_CHARSET_HEX] = "hex",
	[TKMS_CHARSET_BASE64URL] = "base64url",
};

const gchar *
tkms_rotation_step_to_string(TkmsRotationStep step)
{
	g_return_val_if_fail((guint)step < G_N_ELEMENTS(rotation_steps), "none");
	return rotation_steps[step];
}

gboolean
tkms_rotation_step_from_string(const gchar *str, TkmsRotationStep *step)
{
	for (guint i = 0; i < G_N_ELEMENTS(rotation_steps); i++) {
		if (g_strcmp0(str, rotation_steps[i]) == 0) {
			*step = i;
			return TRUE;
		}
	}
	return FALSE;
}

const gchar *
tkms_charset_to_string(TkmsCharset charset)
{
	g_return_val_if_fail((guint)charset < G_N_ELEMENTS(charsets), "alnum");
	return charsets[charset];
}

gboolean
tkms_charset_from_string(const gchar *str, TkmsCharset *charset)
{
	for (guint i = 0; i < G_N_ELEMENTS(charsets); i++) {
		if (g_strcmp0(str, charsets[i]) == 0) {
			*charset = i;
			return TRUE;
		}
	}
	return FALSE;
}

gboolean
tkms_key_name_is_valid(const gchar *name)
{
	gsize len = strlen(name);
	if (len == 0 || len > TKMS_KEY_NAME_MAX || name[0] == '.')
		return FALSE;
	for (gsize i = 0; i < len; i++) {
		gchar c = name[i];
		if (!g_ascii_isalnum(c) && c != '.' && c != '_' && c != '-')
			return FALSE;
	}
	return TRUE;
}

gboolean
tkms_key_type_from_string(const gchar *str, TkmsKeyType *type)
{
	for (guint i = 0; i < G_N_ELEMENTS(key_types); i++) {
		if (g_strcmp0(str, key_types[i].name) == 0) {
			*type = i;
			return TRUE;
		}
	}
	return FALSE;
}

const gchar *
tkms_key_type_to_string(TkmsKeyType type)
{
	return key_types[type].name;
}

const gchar *
tkms_key_type_protection(TkmsKeyType type)
{
	return key_types[type].protection;
}

TkmsTpmObjectKind
tkms_key_type_object_kind(TkmsKeyType type)
{
	return key_types[type].kind;
}

static const gchar *const states[] = {
	TKMS_STATE_PRE_ACTIVE,	TKMS_STATE_ACTIVE,	TKMS_STATE_DEACTIVATED,
	TKMS_STATE_SUSPENDED,	TKMS_STATE_COMPROMISED, TKMS_STATE_DESTROY_SCHEDULED,
	TKMS_STATE_DESTROYED,	NULL,
};

gboolean
tkms_key_state_is_valid(const gchar *state)
{
	return state != NULL && g_strv_contains((const gchar *const *)states, state);
}

gboolean
tkms_key_type_is_signing(TkmsKeyType type)
{
	return type == TKMS_KEY_TYPE_ECDSA_P256 || type == TKMS_KEY_TYPE_RSA_2048;
}

static void
key_version_free(TkmsKeyVersion *v)
{
	tkms_tpm_blob_clear(&v->blob);
	g_free(v->state);
	g_free(v->prior_state);
	g_free(v);
}

TkmsKey *
tkms_key_new(guint32 owner, const gchar *name, TkmsKeyType type)
{
	TkmsKey *key = g_new0(TkmsKey, 1);
	key->refcount = 1;
	key->owner = owner;
	key->name = g_strdup(name);
	key->type = type;
	key->created = g_get_real_time() / G_USEC_PER_SEC;
	key->versions = g_ptr_array_new_with_free_func((GDestroyNotify)key_version_free);
	return key;
}

TkmsKey *
tkms_key_copy(TkmsKey *key)
{
	TkmsKey *copy = tkms_key_new(key->owner, key->name, key->type);

	copy->description = g_strdup(key->description);
	copy->created = key->created;
	copy->pcrs = key->pcrs;
	copy->primary_version = key->primary_version;
	copy->policy = key->policy;
	copy->password = key->password;
	copy->rotation = key->rotation;
	copy->rotation.last_reason = g_strdup(key->rotation.last_reason);
	for (guint i = 0; i < key->versions->len; i++) {
		TkmsKeyVersion *v = g_ptr_array_index(key->versions, i);
		TkmsKeyVersion *c = g_new0(TkmsKeyVersion, 1);
		*c = *v;
		c->state = g_strdup(v->state);
		c->prior_state = g_strdup(v->prior_state);
		memset(&c->blob, 0, sizeof(c->blob));
		tkms_tpm_blob_copy(&c->blob, &v->blob);
		g_ptr_array_add(copy->versions, c);
	}
	return copy;
}

TkmsKey *
tkms_key_ref(TkmsKey *key)
{
	g_atomic_int_inc(&key->refcount);
	return key;
}

void
tkms_key_unref(TkmsKey *key)
{
	if (key == NULL || !g_atomic_int_dec_and_test(&key->refcount))
		return;
	g_free(key->name);
	g_free(key->rotation.last_reason);
	g_free(key->description);
	g_ptr_array_unref(key->versions);
	g_free(key);
}

TkmsKeyVersion *
tkms_key_get_version(TkmsKey *key, guint32 version)
{
	for (guint i = 0; i < key->versions->len; i++) {
		TkmsKeyVersion *v = g_ptr_array_index(key->versions, i);
		if (v->version == version)
			return v;
	}
	return NULL;
}

void
tkms_key_version_set_state(TkmsKeyVersion *v, const gchar *state, gint64 now)
{
	if (g_str_equal(state, TKMS_STATE_ACTIVE) &&
	    (v->activated == 0 || g_strcmp0(v->state, TKMS_STATE_PRE_ACTIVE) == 0))
		v->activated = now;
	else if (g_str_equal(state, TKMS_STATE_DEACTIVATED) &&
		 g_strcmp0(v->state, TKMS_STATE_DEACTIVATED) != 0)
		v->deactivated = now;
	else if (g_str_equal(state, TKMS_STATE_DESTROYED))
		v->destroyed = now;
	if (!g_str_equal(state, TKMS_STATE_DESTROY_SCHEDULED)) {
		v->destroy_at = 0;
		g_clear_pointer(&v->prior_state, g_free);
	}
	g_free(v->state);
	v->state = g_strdup(state);
}

TkmsKeyVersion *
tkms_key_add_version(TkmsKey *key, TkmsTpmBlob *blob_stolen, gint64 now, gint64 activate_at)
{
	TkmsKeyVersion *v = g_new0(TkmsKeyVersion, 1);
	TkmsKeyVersion *old = tkms_key_get_version(key, key->primary_version);

	v->version = key->versions->len + 1;
	v->created = now;
	if (activate_at > now) {
		v->state = g_strdup(TKMS_STATE_PRE_ACTIVE);
		v->activated = activate_at;
	} else {
		v->state = g_strdup(TKMS_STATE_ACTIVE);
		v->activated = now;
	}
	v->blob = *blob_stolen;
	memset(blob_stolen, 0, sizeof(*blob_stolen));
	g_ptr_array_add(key->versions, v);
	if (old != NULL)
		old->superseded = now;
	key->primary_version = v->version;
	return v;
}

TkmsKeyVersion *
tkms_key_add_pending_version(TkmsKey *key, TkmsTpmBlob *blob_stolen, gint64 now)
{
	TkmsKeyVersion *v = g_new0(TkmsKeyVersion, 1);

	v->version = key->versions->len + 1;
	v->created = now;
	v->state = g_strdup(TKMS_STATE_PRE_ACTIVE);
	v->blob = *blob_stolen;
	memset(blob_stolen, 0, sizeof(*blob_stolen));
	g_ptr_array_add(key->versions, v);
	return v;
}

guint32
tkms_key_password_promote(TkmsKey *key, guint32 version, gint64 now)
{
	TkmsKeyVersion *v = tkms_key_get_version(key, version);
	TkmsKeyVersion *old = tkms_key_get_version(key, key->primary_version);
	TkmsKeyVersion *older = tkms_key_get_version(key, key->rotation.previous_version);
	guint32 deactivated = 0;

	g_return_val_if_fail(v != NULL && v != old, 0);
	if (older != NULL && older != old && older != v &&
	    g_str_equal(older->state, TKMS_STATE_ACTIVE)) {
		tkms_key_version_set_state(older, TKMS_STATE_DEACTIVATED, now);
		deactivated = older->version;
	}
	tkms_key_version_set_state(v, TKMS_STATE_ACTIVE, now);
	if (old != NULL)
		old->superseded = now;
	key->rotation.previous_version = old != NULL ? old->version : 0;
	key->primary_version = v->version;
	return deactivated;
}

guint64
tkms_key_max_uses(TkmsKey *key)
{
	if (key->policy.max_uses > 0)
		return key->policy.max_uses;
	return key->type == TKMS_KEY_TYPE_AES_256_GCM ? TKMS_GCM_MAX_USES : G_MAXUINT64;
}

gboolean
tkms_key_primary_used_up(TkmsKey *key)
{
	TkmsKeyVersion *p = tkms_key_get_version(key, key->primary_version);

	return p != NULL && g_strcmp0(p->state, TKMS_STATE_ACTIVE) == 0 &&
	       p->uses >= tkms_key_max_uses(key);
}

gint64
tkms_key_next_rotation(TkmsKey *key)
{
	TkmsKeyVersion *p = tkms_key_get_version(key, key->primary_version);

	if (p == NULL || g_strcmp0(p->state, TKMS_STATE_ACTIVE) != 0)
		return 0;
	if (key->type == TKMS_KEY_TYPE_PASSWORD) {
		/* a rotation under way runs on its own (engine-password-rotation.c); after a
		 * failed one the retry falls due after its backoff, policy or not */
		if (key->rotation.step != TKMS_ROTATION_STEP_NONE)
			return 0;
		if (key->rotation.retry_at > 0)
			return key->rotation.retry_at;
	}
	if (key->policy.period == 0)
		return 0;
	return MAX(p->activated, p->created) + (gint64)key->policy.period;
}

static void
consider(gint64 at, TkmsKeyEvent ev, guint32 version, gint64 *best, TkmsKeyEvent *event,
	 guint32 *best_version)
{
	if (at <= 0 || (*best != 0 && at >= *best))
		return;
	*best = at;
	*event = ev;
	*best_version = version;
}

gint64
tkms_key_next_event(TkmsKey *key, TkmsKeyEvent *event, guint32 *version)
{
	const TkmsKeyPolicy *p = &key->policy;
	gint64 best = 0;

	*event = TKMS_KEY_EVENT_NONE;
	*version = 0;
	for (guint i = 0; i < key->versions->len; i++) {
		TkmsKeyVersion *v = g_ptr_array_index(key->versions, i);
		gboolean primary = v->version == key->primary_version;

		/* a pending password version is pre-active without an activation date: only
		 * its rotation's switch makes it active, never the scheduler */
		if (g_str_equal(v->state, TKMS_STATE_PRE_ACTIVE)) {
			if (v->activated > 0)
				consider(v->activated, TKMS_KEY_EVENT_ACTIVATE, v->version, &best,
					 event, version);
		} else if (g_str_equal(v->state, TKMS_STATE_DESTROY_SCHEDULED))
			consider(v->destroy_at, TKMS_KEY_EVENT_DESTROY, v->version, &best, event,
				 version);
		else if (g_str_equal(v->state, TKMS_STATE_ACTIVE) && !primary &&
			 p->deactivate_after > 0 && v->superseded > 0)
			consider(v->superseded + (gint64)p->deactivate_after,
				 TKMS_KEY_EVENT_DEACTIVATE, v->version, &best, event, version);
		else if (g_str_equal(v->state, TKMS_STATE_DEACTIVATED) && p->destroy_after > 0 &&
			 v->deactivated > 0)
			consider(v->deactivated + (gint64)p->destroy_after,
				 TKMS_KEY_EVENT_SCHEDULE_DESTROY, v->version, &best, event,
				 version);
	}
	consider(tkms_key_next_rotation(key), TKMS_KEY_EVENT_ROTATE, 0, &best, event, version);
	/* a primary that protected its max-uses: its rotation fell due when it was activated
	 * (any time in the past will do) */
	if (tkms_key_primary_used_up(key) &&
	    !(key->type == TKMS_KEY_TYPE_PASSWORD &&
	      key->rotation.step != TKMS_ROTATION_STEP_NONE)) {
		TkmsKeyVersion *p = tkms_key_get_version(key, key->primary_version);
		consider(MAX(MAX(p->activated, p->created), 1), TKMS_KEY_EVENT_ROTATE, 0, &best,
			 event, version);
	}
	return best;
}

static void
add_time(GVariantBuilder *b, const gchar *name, gint64 t)
{
	if (t > 0)
		g_variant_builder_add(b, "{sv}", name, g_variant_new_uint64(t));
}

static GVariant *
policy_to_variant(const TkmsKeyPolicy *p)
{
	GVariantBuilder b;

	g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
	if (p->period)
		g_variant_builder_add(&b, "{sv}", "period", g_variant_new_uint64(p->period));
	if (p->max_uses)
		g_variant_builder_add(&b, "{sv}", "max-uses", g_variant_new_uint64(p->max_uses));
	if (p->deactivate_after)
		g_variant_builder_add(&b, "{sv}", "deactivate-after",
				      g_variant_new_uint64(p->deactivate_after));
	if (p->destroy_after)
		g_variant_builder_add(&b, "{sv}", "destroy-after",
				      g_variant_new_uint64(p->destroy_after));
	if (p->hook[0] != '\0')
		g_variant_builder_add(&b, "{sv}", "hook", g_variant_new_string(p->hook));
	return g_variant_builder_end(&b);
}

const gchar *
tkms_key_version_stage(TkmsKey *key, TkmsKeyVersion *v)
{
	if (key->type != TKMS_KEY_TYPE_PASSWORD || g_str_equal(v->state, TKMS_STATE_DESTROYED))
		return NULL;
	if (v->version == key->primary_version)
		return "current";
	if (key->rotation.step != TKMS_ROTATION_STEP_NONE &&
	    v->version == key->rotation.pending_version)
		return "pending";
	if (v->version == key->rotation.previous_version)
		return "previous";
	return NULL;
}

TkmsKeyVersion *
tkms_key_version_at_stage(TkmsKey *key, const gchar *stage)
{
	for (guint i = 0; i < key->versions->len; i++) {
		TkmsKeyVersion *v = g_ptr_array_index(key->versions, i);
		if (g_strcmp0(tkms_key_version_stage(key, v), stage) == 0)
			return v;
	}
	return NULL;
}

static void
add_password_info(GVariantBuilder *b, TkmsKey *key)
{
	const TkmsKeyRotation *r = &key->rotation;
	GVariantBuilder d;

	g_variant_builder_init(&d, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&d, "{sv}", "length", g_variant_new_uint32(key->password.length));
	g_variant_builder_add(&d, "{sv}", "charset",
			      g_variant_new_string(tkms_charset_to_string(key->password.charset)));
	g_variant_builder_add(&d, "{sv}", "exclude", g_variant_new_string(key->password.exclude));
	g_variant_builder_add(b, "{sv}", "password", g_variant_builder_end(&d));
	if (r->step != TKMS_ROTATION_STEP_NONE) {
		g_variant_builder_init(&d, G_VARIANT_TYPE_VARDICT);
		g_variant_builder_add(&d, "{sv}", "step",
				      g_variant_new_string(tkms_rotation_step_to_string(r->step)));
		g_variant_builder_add(&d, "{sv}", "version",
				      g_variant_new_uint32(r->pending_version));
		g_variant_builder_add(&d, "{sv}", "started", g_variant_new_uint64(r->started));
		g_variant_builder_add(b, "{sv}", "rotation", g_variant_builder_end(&d));
	}
	if (r->last_time != 0) {
		g_variant_builder_init(&d, G_VARIANT_TYPE_VARDICT);
		g_variant_builder_add(&d, "{sv}", "result",
				      g_variant_new_string(r->last_ok ? "ok" : "failed"));
		g_variant_builder_add(
		    &d, "{sv}", "step",
		    g_variant_new_string(tkms_rotation_step_to_string(r->last_step)));
		g_variant_builder_add(&d, "{sv}", "time", g_variant_new_uint64(r->last_time));
		g_variant_builder_add(&d, "{sv}", "version", g_variant_new_uint32(r->last_version));
		g_variant_builder_add(&d, "{sv}", "reason",
				      g_variant_new_string(r->last_reason ? r->last_reason : ""));
		if (r->retry_at != 0)
			g_variant_builder_add(&d, "{sv}", "next-retry",
					      g_variant_new_uint64(r->retry_at));
		g_variant_builder_add(b, "{sv}", "last-rotation", g_variant_builder_end(&d));
	}
}

GVariant *
tkms_key_to_variant(TkmsKey *key)
{
	GVariantBuilder b, vb, pb;

	g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&b, "{sv}", "name", g_variant_new_string(key->name));
	g_variant_builder_add(&b, "{sv}", "type",
			      g_variant_new_string(tkms_key_type_to_string(key->type)));
	g_variant_builder_add(&b, "{sv}", "protection",
			      g_variant_new_string(tkms_key_type_protection(key->type)));
	g_variant_builder_add(&b, "{sv}", "owner", g_variant_new_uint32(key->owner));
	g_variant_builder_add(&b, "{sv}", "created", g_variant_new_uint64(key->created));
	g_variant_builder_add(&b, "{sv}", "primary-version",
			      g_variant_new_uint32(key->primary_version));
	g_variant_builder_add(&b, "{sv}", "policy", policy_to_variant(&key->policy));
	g_variant_builder_add(&b, "{sv}", "next-rotation",
			      g_variant_new_uint64(tkms_key_next_rotation(key)));
	g_variant_builder_init(&vb, G_VARIANT_TYPE("aa{sv}"));
	for (guint i = 0; i < key->versions->len; i++) {
		TkmsKeyVersion *v = g_ptr_array_index(key->versions, i);
		g_variant_builder_open(&vb, G_VARIANT_TYPE_VARDICT);
		g_variant_builder_add(&vb, "{sv}", "version", g_variant_new_uint32(v->version));
		g_variant_builder_add(&vb, "{sv}", "state", g_variant_new_string(v->state));
		g_variant_builder_add(&vb, "{sv}", "created", g_variant_new_uint64(v->created));
		add_time(&vb, g_str_equal(v->state, TKMS_STATE_PRE_ACTIVE) ? "activate-at"
									     : "activated",
			 v->activated);
		add_time(&vb, "superseded", v->superseded);
		add_time(&vb, "deactivated", v->deactivated);
		add_time(&vb, "destroy-at", v->destroy_at);
		add_time(&vb, "destroyed", v->destroyed);
		g_variant_builder_add(&vb, "{sv}", "uses", g_variant_new_uint64(v->uses));
		if (tkms_key_version_stage(key, v) != NULL)
			g_variant_builder_add(&vb, "{sv}", "stage",
					      g_variant_new_string(tkms_key_version_stage(key, v)));
		if (tkms_key_type_is_signing(key->type) && v->blob.public != NULL) {
			g_autoptr(GError) error = NULL;
			g_autofree gchar *pem = tkms_crypto_public_pem(v->blob.public, &error);
			if (pem != NULL)
				g_variant_builder_add(&vb, "{sv}", "public-key",
						      g_variant_new_string(pem));
			else
				g_debug("no public key for version %u of %s: %s", v->version,
					key->name, error->message);
		}
		g_variant_builder_close(&vb);
	}
	g_variant_builder_add(&b, "{sv}", "versions", g_variant_builder_end(&vb));
	g_variant_builder_init(&pb, G_VARIANT_TYPE("au"));
	for (guint i = 0; i < TKMS_PCR_MAX; i++)
		if (key->pcrs & (1u << i))
			g_variant_builder_add(&pb, "u", i);
	g_variant_builder_add(&b, "{sv}", "pcrs", g_variant_builder_end(&pb));
	g_variant_builder_add(&b, "{sv}", "description",
			      g_variant_new_string(key->description ? key->description : ""));
	if (key->type == TKMS_KEY_TYPE_PASSWORD)
		add_password_info(&b, key);
	return g_variant_builder_end(&b);
}
