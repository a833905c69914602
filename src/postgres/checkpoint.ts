/**
 * Making an upstream write its current timeline into its control file before pg_rewind reads it
 * there: a freshly promoted server does so only at its next checkpoint, which a plain
 * `pg_ctl promote` leaves spread out over minutes. The pgrepl role asks for the checkpoint.
 * CHECKPOINT is for superusers only before 15 (pg_checkpoint from 15 on), so pgrepl calls a
 * SECURITY DEFINER function that the superuser creates with the role (steps/replication-role.ts).
 */
import { asReplicationUser, CHECKPOINT_PATIENCE, type ReplicationTarget } from './replication.js';

/** The superuser's function that runs CHECKPOINT, executable by the pgrepl role only. */
export const CHECKPOINT_FUNCTION = { schema: 'pgrepl', name: 'checkpoint' } as const;

/** A checkpoint on the upstream, asked for as the pgrepl role; false if refused. */
export async function requestCheckpoint(t: ReplicationTarget): Promise<boolean> {
  return (await asReplicationUser(t, async (c) => {
    try {
      await c.query(`SELECT ${CHECKPOINT_FUNCTION.schema}.${CHECKPOINT_FUNCTION.name}()`);
    } catch {
      // A cluster whose role was set up before the function existed: 15+ grants pg_checkpoint.
      await c.query('CHECKPOINT');
    }
    return true;
  }, CHECKPOINT_PATIENCE)) ?? false;
}
