// Who is signed in (GET /api/me), fetched once per sign-in, and what that role may do: the
// buttons a user may not use are disabled with the reason (the API refuses them anyway).

import { useEffect, useState } from "preact/hooks";
import { api } from "../api/client";
import { ROLE_RANK, type Role } from "../api/contract";
import type { Me } from "../api/types";

export type { Me };

let current: Me | null = null;
let pending: Promise<Me> | null = null;
const listeners = new Set<(me: Me | null) => void>();

export function loadMe(): Promise<Me> {
  pending ??= api<Me>("/me").then((me) => {
    current = me;
    for (const fn of listeners) fn(me);
    return me;
  });
  pending.catch(() => (pending = null));
  return pending;
}

export function forgetMe(): void {
  current = null;
  pending = null;
  for (const fn of listeners) fn(null);
}

export function useMe(): Me | null {
  const [me, setMe] = useState<Me | null>(current);
  useEffect(() => {
    listeners.add(setMe);
    if (!current) loadMe().catch(() => undefined);
    return () => void listeners.delete(setMe);
  }, []);
  return me;
}

export const atLeast = (me: Me | null, role: Role): boolean => !!me && ROLE_RANK[me.role] >= ROLE_RANK[role];

/** Why ``me`` may not change a run, job or experiment owned by ``owner`` (null: it may). */
export function whyNot(me: Me | null, owner: string | null | undefined, what = "run"): string | null {
  if (!me) return null; // not known yet: the API decides
  if (me.role === "admin") return null;
  if (me.role === "viewer") return `You are a viewer: viewers cannot change a ${what}. Ask an admin for the operator role.`;
  if (owner && owner !== me.name) return `This ${what} belongs to ${owner}: an operator changes only their own.`;
  return null;
}

/** Why ``me`` may not launch (null: it may). */
export function whyNotLaunch(me: Me | null): string | null {
  if (!me || atLeast(me, "operator")) return null;
  return "You are a viewer: viewers cannot launch runs. Ask an admin for the operator role.";
}
