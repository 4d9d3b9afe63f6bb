/**
 * What a subsystem that destroys data (image delete, the console's bulk deploy) needs from restore
 * points: one call to await before it acts, which throws (SNAPSHOT_FAILED) when the operation must not go
 * ahead. Declared here rather than in snapshots/ so that those subsystems depend on this signature only,
 * never on the snapshots module; master.ts and the CLI pass in the real one (snapshots/index.ts).
 */
export type BeforeRisky = (reason: string, actor: string | null) => Promise<void>;
