package delivery

import "github.com/google/uuid"

// idNamespace seeds delivery ids, so one (event, webhook) pair always gets the same id.
var idNamespace = uuid.MustParse("6f1c1b8e-4a55-4f0e-9a37-3c1f0d8a2b71")

// ID is the stable id of delivering event eventID to webhook webhookID: the same on
// every attempt and every re-dispatch, different for every webhook. The dispatch names
// its deliveries with it, and the subscriber listing names the deliveries a filter
// skipped with it, so both write the same delivery log row.
func ID(eventID, webhookID string) string {
	return uuid.NewSHA1(idNamespace, []byte(eventID+"\x00"+webhookID)).String()
}
