// What the testing kit describes a destination with: address, weight, thresholds and the
// load it carries when a scheduler runs.

export interface DestinationSpec {
  readonly address: string;
  readonly port?: number;
  /** 0..65535, default 1. */
  readonly weight?: number;
  readonly activeConnections?: number;
  readonly inactiveConnections?: number;
  readonly persistentConnections?: number;
  /** The OVERLOAD flag as the threshold rule left it. */
  readonly overloaded?: boolean;
  readonly upperThreshold?: number;
  readonly lowerThreshold?: number;
}

/** The weights of a destination set, in order (default weight 1). */
export function weightsOf(dests: readonly DestinationSpec[]): number[] {
  return dests.map((d) => d.weight ?? 1);
}
