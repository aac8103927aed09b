/* SPDX-License-Identifier: MIT */
/* A peer link as `wice status` shows it. */
#include <glib.h>
#include "daemon/peer_link_internal.h"

static void cand_status(const struct ice_candidate *c, struct control_candidate *ret)
{
	g_strlcpy(ret->type, ice_candidate_type_name(c->type), sizeof(ret->type));
	g_strlcpy(ret->address, c->address, sizeof(ret->address));
	ret->port = (uint16_t)c->port;
	g_strlcpy(ret->transport, c->transport == ICE_TRANSPORT_TCP ? "tcp" : "udp",
		  sizeof(ret->transport));
}

#define TYPE(t) (1U << ICE_CANDIDATE_##t)

/*
 * Why ICE settled for a relay, from the candidate types each side offered this generation: a
 * relayed pair is selected only when no pair between the others has succeeded (yet).
 */
static const char *relay_reason(const struct peer_link *l)
{
	unsigned int lo = l->local_types, re = l->remote_types;

	if (re && !(re & ~TYPE(RELAY)))
		return "the peer offered only relay candidates";
	if (lo && !(lo & ~TYPE(RELAY)))
		return "only relay candidates gathered here";
	if (!(lo & TYPE(SRFLX)) && !(re & TYPE(SRFLX)))
		return "no server-reflexive candidate on either side (UDP blocked?), host pairs "
		       "failed";
	if (!(lo & TYPE(SRFLX)))
		return "no server-reflexive candidate here (UDP blocked?), checks to the peer's "
		       "failed";
	if (!(re & TYPE(SRFLX)))
		return "the peer has no server-reflexive candidate (UDP blocked there?), checks "
		       "failed";
	return "no direct pair succeeded: local srflx and remote srflx candidates gathered, "
	       "checks failed (symmetric NAT?)";
}

void peer_link_status(const struct peer_link *l, struct control_peer *ret)
{
	g_strlcpy(ret->state, ice_state_name(l->state), sizeof(ret->state));
	ret->ice_restarts = l->restarts;
	ret->last_restart = l->restart_at;
	g_strlcpy(ret->last_restart_reason, l->restart_reason, sizeof(ret->last_restart_reason));
	ret->pair_changes = l->pair_changes;
	ret->pair_selected = l->has_pair ? l->pair_at : 0;
	ret->connected_since = l->state == ICE_STATE_CONNECTED ? l->connected_at : 0;
	ret->recoveries = l->recoveries;
	ret->last_recovery = l->recovery_at;
	ret->last_outage_ms = l->outage_ms;
	ret->has_selected_pair = l->has_pair;
	if (!l->has_pair)
		return;
	cand_status(&l->pair.local, &ret->local);
	cand_status(&l->pair.remote, &ret->remote);
	ret->relayed = l->pair.local.type == ICE_CANDIDATE_RELAY ||
		       l->pair.remote.type == ICE_CANDIDATE_RELAY;
	if (ret->relayed)
		g_strlcpy(ret->relay_reason, relay_reason(l), sizeof(ret->relay_reason));
}
