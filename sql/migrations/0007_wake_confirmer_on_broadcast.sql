-- 0007: wake the confirmer when a transaction has been broadcast, not when it is stored: woken on the
-- insert it would look before the broadcast, find no receipt, and wait out its recheck delay.
-- (A stored transaction that is never broadcast is found by the confirmer's poll, as before.)
DROP TRIGGER chain_txs_notify ON chain_txs;
CREATE TRIGGER chain_txs_notify AFTER UPDATE OF broadcast_count ON chain_txs
    FOR EACH ROW EXECUTE FUNCTION notify_chain_tx();
