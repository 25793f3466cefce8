// Advantage estimators over the tokens the policy chose. Interpreter and prompt tokens are not
// actions: they get no advantage, and GAE runs over the policy's own tokens in order, as if the
// interpreter's output were part of the environment's transition.

/**
 * Generalised advantage estimation for one trajectory with a single outcome reward on its last
 * action. `values[i]` is the critic's estimate before action i; `actions[i]` is 1 for a policy
 * token. Returns advantages and returns (advantage + value) per token, 0 where not an action.
 */
export function gae(
  values: number[],
  actions: number[],
  reward: number,
  gamma: number,
  lambda: number,
  perTokenRewards?: number[],
): { advantages: number[]; returns: number[] } {
  const idx = actions.flatMap((a, i) => (a ? [i] : []));
  const advantages = values.map(() => 0);
  const returns = values.map(() => 0);
  let next = 0;
  let nextValue = 0;
  for (let k = idx.length - 1; k >= 0; k--) {
    const i = idx[k]!;
    const r = (k === idx.length - 1 ? reward : 0) + (perTokenRewards?.[i] ?? 0);
    const delta = r + gamma * nextValue - values[i]!;
    next = delta + gamma * lambda * next;
    advantages[i] = next;
    returns[i] = next + values[i]!;
    nextValue = values[i]!;
  }
  return { advantages, returns };
}

/**
 * Advantages shifted and scaled to mean 0 and (unbiased) std 1 over every action token of the
 * batch, as verl's and OpenRLHF's PPO do: the critic's scale drifts, the step size should not.
 * Non-action positions stay 0.
 */
export function whiten(advantages: number[][], actions: number[][], eps = 1e-8): number[][] {
  const values = advantages.flatMap((row, i) => row.filter((_, t) => actions[i]![t]));
  if (values.length < 2) return advantages;
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const variance = values.reduce((a, v) => a + (v - mean) ** 2, 0) / (values.length - 1);
  const scale = 1 / Math.sqrt(variance + eps);
  return advantages.map((row, i) => row.map((a, t) => (actions[i]![t] ? (a - mean) * scale : 0)));
}

export interface GroupAdvantages {
  /** One advantage per trajectory (broadcast over its action tokens). */
  advantages: number[];
  /** False for the trajectories of groups whose rewards were all equal (DAPO drops them). */
  kept: boolean[];
}

/**
 * GRPO: (r - mean) / (std + eps) within each group of samples of the same prompt. `groups[i]`
 * names trajectory i's group.
 */
export function groupAdvantages(
  rewards: number[],
  groups: number[],
  opts: { eps?: number; dropUniform?: boolean; normalizeStd?: boolean } = {},
): GroupAdvantages {
  const eps = opts.eps ?? 1e-6;
  const members = new Map<number, number[]>();
  groups.forEach((g, i) => members.set(g, [...(members.get(g) ?? []), i]));
  const advantages = rewards.map(() => 0);
  const kept = rewards.map(() => true);
  for (const idx of members.values()) {
    const rs = idx.map((i) => rewards[i]!);
    const mean = rs.reduce((a, b) => a + b, 0) / rs.length;
    // Unbiased (n - 1) std, as torch.std in verl's GRPO; a lone sample has no spread.
    const std = rs.length > 1 ? Math.sqrt(rs.reduce((a, r) => a + (r - mean) ** 2, 0) / (rs.length - 1)) : 0;
    const uniform = rs.every((r) => r === rs[0]);
    for (const i of idx) {
      advantages[i] = opts.normalizeStd === false ? rewards[i]! - mean : (rewards[i]! - mean) / (std + eps);
      if (uniform && opts.dropUniform !== false) kept[i] = false;
    }
  }
  return { advantages, kept };
}
