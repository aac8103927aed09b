/* SPDX-License-Identifier: MIT */
/* control: the status document, its limits, and its JSON both ways (json-glib). */
#include <errno.h>
#include <json-glib/json-glib.h>
#include <stdlib.h>
#include <string.h>
#include "daemon/control.h"
#include "daemon/wgctl.h"
#include "daemon/wgctl_internal.h"
#include "util/key.h"

_Static_assert(CONTROL_KEY_LEN == WG_KEY_LEN, "status keys are WireGuard keys");

/* ---- the struct ---- */

static int grow(void **v, size_t n, size_t *cap, size_t elem, size_t max)
{
	size_t ncap;
	void *nv;

	if (n >= max)
		return -E2BIG;
	if (n < *cap)
		return 0;
	ncap = *cap ? 2 * *cap : 4;
	nv = reallocarray(*v, ncap, elem);
	if (!nv)
		return -ENOMEM;
	*v = nv;
	*cap = ncap;
	return 0;
}

int control_status_add_interface(struct control_status *st, struct control_interface **ret)
{
	int r = grow((void **)&st->interfaces, st->n_interfaces, &st->cap_interfaces,
		     sizeof(*st->interfaces), CONTROL_MAX_INTERFACES);

	if (r < 0)
		return r;
	*ret = &st->interfaces[st->n_interfaces++];
	memset(*ret, 0, sizeof(**ret));
	return 0;
}

int control_interface_add_peer(struct control_interface *iface, struct control_peer **ret)
{
	int r = grow((void **)&iface->peers, iface->n_peers, &iface->cap_peers,
		     sizeof(*iface->peers), CONTROL_MAX_PEERS);

	if (r < 0)
		return r;
	*ret = &iface->peers[iface->n_peers++];
	memset(*ret, 0, sizeof(**ret));
	return 0;
}

void control_status_clear(struct control_status *st)
{
	for (size_t i = 0; i < st->n_interfaces; i++)
		free(st->interfaces[i].peers);
	free(st->interfaces);
	memset(st, 0, sizeof(*st));
}

/* ---- to JSON ---- */

static void add_string_or_null(JsonBuilder *b, const char *key, const char *s)
{
	json_builder_set_member_name(b, key);
	if (s && *s)
		json_builder_add_string_value(b, s);
	else
		json_builder_add_null_value(b);
}

static void add_key(JsonBuilder *b, const char *name, const uint8_t key[static CONTROL_KEY_LEN],
		    bool present)
{
	char b64[WG_KEY_B64_LEN + 1];

	if (present)
		key_to_base64(b64, key);
	add_string_or_null(b, name, present ? b64 : NULL);
}

static void add_int(JsonBuilder *b, const char *key, int64_t v)
{
	json_builder_set_member_name(b, key);
	json_builder_add_int_value(b, v);
}

static void add_candidate(JsonBuilder *b, const char *key, const struct control_candidate *c)
{
	json_builder_set_member_name(b, key);
	json_builder_begin_object(b);
	add_string_or_null(b, "type", c->type);
	add_string_or_null(b, "address", c->address);
	add_int(b, "port", c->port);
	add_string_or_null(b, "transport", c->transport);
	json_builder_end_object(b);
}

int control_endpoint_format(char buf[static CONTROL_ENDPOINT_LEN],
			    const struct sockaddr_storage *ss)
{
	socklen_t len =
		ss->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	int r;

	buf[0] = '\0';
	if (ss->ss_family == AF_UNSPEC)
		return 0;
	r = wgctl_uapi_format_endpoint(buf, CONTROL_ENDPOINT_LEN, (const struct sockaddr *)ss, len);
	if (r < 0)
		buf[0] = '\0';
	return r;
}

static void add_endpoint(JsonBuilder *b, const struct sockaddr_storage *ss)
{
	char buf[CONTROL_ENDPOINT_LEN];

	control_endpoint_format(buf, ss);
	add_string_or_null(b, "endpoint", buf);
}

/* JSON integers are signed 64 bits here; a counter past that is clamped, not wrapped. */
static int64_t clamp_u64(uint64_t v)
{
	return v > INT64_MAX ? INT64_MAX : (int64_t)v;
}

static void add_peer(JsonBuilder *b, const struct control_peer *p)
{
	json_builder_begin_object(b);
	add_key(b, "public_key", p->public_key, true);
	add_string_or_null(b, "state", p->state);
	json_builder_set_member_name(b, "selected_pair");
	if (p->has_selected_pair) {
		json_builder_begin_object(b);
		add_candidate(b, "local", &p->local);
		add_candidate(b, "remote", &p->remote);
		json_builder_end_object(b);
	} else {
		json_builder_add_null_value(b);
	}
	json_builder_set_member_name(b, "relayed");
	json_builder_add_boolean_value(b, p->relayed);
	add_string_or_null(b, "relay_reason", p->relay_reason);
	add_int(b, "last_handshake", p->last_handshake);
	add_int(b, "rx_bytes", clamp_u64(p->rx_bytes));
	add_int(b, "tx_bytes", clamp_u64(p->tx_bytes));
	add_endpoint(b, &p->endpoint);
	add_int(b, "ice_restarts", p->ice_restarts);
	add_int(b, "last_restart", p->last_restart);
	add_string_or_null(b, "last_restart_reason", p->last_restart_reason);
	add_int(b, "pair_changes", p->pair_changes);
	add_int(b, "pair_selected", p->pair_selected);
	add_int(b, "connected_since", p->connected_since);
	add_int(b, "recoveries", p->recoveries);
	add_int(b, "last_recovery", p->last_recovery);
	add_int(b, "last_outage_ms", p->last_outage_ms);
	json_builder_end_object(b);
}

static void add_interface(JsonBuilder *b, const struct control_interface *in)
{
	json_builder_begin_object(b);
	add_string_or_null(b, "name", in->name);
	add_string_or_null(b, "kind", in->kind);
	add_key(b, "public_key", in->public_key, in->has_public_key);
	add_int(b, "listen_port", in->listen_port);
	add_int(b, "signaling_backends", in->signaling_backends);
	add_int(b, "signaling_connected", in->signaling_connected);
	add_int(b, "signaling_disconnects", in->signaling_disconnects);
	json_builder_set_member_name(b, "peers");
	json_builder_begin_array(b);
	for (size_t i = 0; i < in->n_peers; i++)
		add_peer(b, &in->peers[i]);
	json_builder_end_array(b);
	json_builder_end_object(b);
}

int control_status_to_json(const struct control_status *st, char **ret_json, size_t *ret_len)
{
	JsonBuilder *b = json_builder_new();
	JsonGenerator *gen;
	JsonNode *root;
	gsize len;
	char *out;

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "interfaces");
	json_builder_begin_array(b);
	for (size_t i = 0; i < st->n_interfaces; i++)
		add_interface(b, &st->interfaces[i]);
	json_builder_end_array(b);
	json_builder_end_object(b);
	root = json_builder_get_root(b);
	gen = json_generator_new();
	json_generator_set_root(gen, root);
	out = json_generator_to_data(gen, &len);
	json_node_unref(root);
	g_object_unref(gen);
	g_object_unref(b);
	if (!out)
		return -ENOMEM;
	*ret_json = out;
	*ret_len = len;
	return 0;
}

/* ---- from JSON ---- */

/* A string member that fits size; NULL allowed (read as ""). */
static int get_str(JsonObject *o, const char *key, char *buf, size_t size)
{
	JsonNode *n = json_object_get_member(o, key);
	const char *s;

	if (!n)
		return -EBADMSG;
	if (JSON_NODE_HOLDS_NULL(n)) {
		buf[0] = '\0';
		return 0;
	}
	if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
		return -EBADMSG;
	s = json_node_get_string(n);
	if (strlen(s) >= size)
		return -EBADMSG;
	strcpy(buf, s);
	return 0;
}

static int get_int(JsonObject *o, const char *key, int64_t min, int64_t max, int64_t *ret)
{
	JsonNode *n = json_object_get_member(o, key);
	int64_t v;

	if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_INT64)
		return -EBADMSG;
	v = json_node_get_int(n);
	if (v < min || v > max)
		return -EBADMSG;
	*ret = v;
	return 0;
}

/* A member added after the first version: missing is 0, present must be right. */
static int get_int_opt(JsonObject *o, const char *key, int64_t max, int64_t *ret)
{
	if (!json_object_has_member(o, key)) {
		*ret = 0;
		return 0;
	}
	return get_int(o, key, 0, max, ret);
}

static int get_u32_opt(JsonObject *o, const char *key, uint32_t *ret)
{
	int64_t v;
	int r = get_int_opt(o, key, UINT32_MAX, &v);

	if (r == 0)
		*ret = (uint32_t)v;
	return r;
}

static int get_bool(JsonObject *o, const char *key, bool *ret)
{
	JsonNode *n = json_object_get_member(o, key);

	if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_BOOLEAN)
		return -EBADMSG;
	*ret = json_node_get_boolean(n);
	return 0;
}

/* NULL for a missing or non-object member; *is_null tells null apart when allowed. */
static JsonObject *get_obj(JsonObject *o, const char *key, bool *is_null)
{
	JsonNode *n = json_object_get_member(o, key);

	if (is_null)
		*is_null = n && JSON_NODE_HOLDS_NULL(n);
	return n && JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
}

static JsonArray *get_array(JsonObject *o, const char *key)
{
	JsonNode *n = json_object_get_member(o, key);

	return n && JSON_NODE_HOLDS_ARRAY(n) ? json_node_get_array(n) : NULL;
}

static int get_key(JsonObject *o, const char *name, uint8_t key[static CONTROL_KEY_LEN],
		   bool *present)
{
	char b64[WG_KEY_B64_LEN + 1];
	int r = get_str(o, name, b64, sizeof(b64));

	if (r < 0)
		return r;
	*present = b64[0] != '\0';
	return *present && key_from_base64(key, b64) < 0 ? -EBADMSG : 0;
}

static int read_candidate(JsonObject *o, struct control_candidate *c)
{
	int64_t port;
	int r;

	if (!o)
		return -EBADMSG;
	r = get_str(o, "type", c->type, sizeof(c->type));
	if (r == 0)
		r = get_str(o, "address", c->address, sizeof(c->address));
	if (r == 0)
		r = get_int(o, "port", 0, UINT16_MAX, &port);
	if (r == 0)
		r = get_str(o, "transport", c->transport, sizeof(c->transport));
	if (r == 0)
		c->port = (uint16_t)port;
	return r;
}

static int read_recovery(JsonObject *o, struct control_peer *p)
{
	if (json_object_has_member(o, "last_restart_reason") &&
	    get_str(o, "last_restart_reason", p->last_restart_reason,
		    sizeof(p->last_restart_reason)) < 0)
		return -EBADMSG;
	if (get_u32_opt(o, "ice_restarts", &p->ice_restarts) < 0 ||
	    get_int_opt(o, "last_restart", INT64_MAX, &p->last_restart) < 0 ||
	    get_u32_opt(o, "pair_changes", &p->pair_changes) < 0 ||
	    get_int_opt(o, "pair_selected", INT64_MAX, &p->pair_selected) < 0 ||
	    get_int_opt(o, "connected_since", INT64_MAX, &p->connected_since) < 0 ||
	    get_u32_opt(o, "recoveries", &p->recoveries) < 0 ||
	    get_int_opt(o, "last_recovery", INT64_MAX, &p->last_recovery) < 0 ||
	    get_int_opt(o, "last_outage_ms", INT64_MAX, &p->last_outage_ms) < 0)
		return -EBADMSG;
	return 0;
}

static int read_peer(JsonObject *o, struct control_peer *p)
{
	char ep[CONTROL_ENDPOINT_LEN];
	JsonObject *pair;
	bool present, is_null;
	int64_t v;
	int r;

	r = get_key(o, "public_key", p->public_key, &present);
	if (r < 0 || !present)
		return -EBADMSG;
	if (get_str(o, "state", p->state, sizeof(p->state)) < 0 ||
	    get_bool(o, "relayed", &p->relayed) < 0 ||
	    get_str(o, "relay_reason", p->relay_reason, sizeof(p->relay_reason)) < 0 ||
	    get_int(o, "last_handshake", 0, INT64_MAX, &p->last_handshake) < 0 ||
	    get_str(o, "endpoint", ep, sizeof(ep)) < 0)
		return -EBADMSG;
	if (get_int(o, "rx_bytes", 0, INT64_MAX, &v) < 0)
		return -EBADMSG;
	p->rx_bytes = (uint64_t)v;
	if (get_int(o, "tx_bytes", 0, INT64_MAX, &v) < 0)
		return -EBADMSG;
	p->tx_bytes = (uint64_t)v;
	if (ep[0] && wgctl_uapi_parse_endpoint(ep, &p->endpoint) < 0)
		return -EBADMSG;
	if (read_recovery(o, p) < 0)
		return -EBADMSG;
	pair = get_obj(o, "selected_pair", &is_null);
	if (!pair)
		return is_null ? 0 : -EBADMSG;
	p->has_selected_pair = true;
	r = read_candidate(get_obj(pair, "local", NULL), &p->local);
	return r < 0 ? r : read_candidate(get_obj(pair, "remote", NULL), &p->remote);
}

static int read_interface(JsonObject *o, struct control_interface *in)
{
	JsonArray *peers = get_array(o, "peers");
	int64_t port;
	int r;

	if (!peers || get_str(o, "name", in->name, sizeof(in->name)) < 0 ||
	    !wgctl_ifname_valid(in->name) || get_str(o, "kind", in->kind, sizeof(in->kind)) < 0 ||
	    get_key(o, "public_key", in->public_key, &in->has_public_key) < 0 ||
	    get_int(o, "listen_port", 0, UINT16_MAX, &port) < 0)
		return -EBADMSG;
	in->listen_port = (uint16_t)port;
	if (get_u32_opt(o, "signaling_backends", &in->signaling_backends) < 0 ||
	    get_u32_opt(o, "signaling_connected", &in->signaling_connected) < 0 ||
	    get_u32_opt(o, "signaling_disconnects", &in->signaling_disconnects) < 0)
		return -EBADMSG;
	for (guint i = 0; i < json_array_get_length(peers); i++) {
		JsonNode *n = json_array_get_element(peers, i);
		struct control_peer *p;

		if (!JSON_NODE_HOLDS_OBJECT(n))
			return -EBADMSG;
		r = control_interface_add_peer(in, &p);
		if (r == 0)
			r = read_peer(json_node_get_object(n), p);
		if (r < 0)
			return r;
	}
	return 0;
}

static int read_status(JsonObject *root, struct control_status *st, char **ret_error)
{
	JsonArray *ifaces = get_array(root, "interfaces");
	char err[256];
	int r;

	if (json_object_has_member(root, "error")) {
		if (get_str(root, "error", err, sizeof(err)) < 0)
			return -EBADMSG;
		if (ret_error)
			*ret_error = g_strdup(err);
		return -EREMOTEIO;
	}
	if (!ifaces)
		return -EBADMSG;
	for (guint i = 0; i < json_array_get_length(ifaces); i++) {
		JsonNode *n = json_array_get_element(ifaces, i);
		struct control_interface *in;

		if (!JSON_NODE_HOLDS_OBJECT(n))
			return -EBADMSG;
		r = control_status_add_interface(st, &in);
		if (r == 0)
			r = read_interface(json_node_get_object(n), in);
		if (r < 0)
			return r;
	}
	return 0;
}

int control_status_from_json(const char *json, size_t len, struct control_status *ret,
			     char **ret_error)
{
	struct control_status st = {0};
	JsonParser *parser = json_parser_new();
	JsonNode *root;
	int r = -EBADMSG;

	if (len > CONTROL_MAX_RESPONSE || len > G_MAXSSIZE)
		goto out;
	if (!json_parser_load_from_data(parser, json, (gssize)len, NULL))
		goto out;
	root = json_parser_get_root(parser);
	if (!root || !JSON_NODE_HOLDS_OBJECT(root))
		goto out;
	r = read_status(json_node_get_object(root), &st, ret_error);
out:
	g_object_unref(parser);
	if (r < 0) {
		control_status_clear(&st);
		return r;
	}
	*ret = st;
	return 0;
}
