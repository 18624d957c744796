// Package credentials makes and checks the secrets of the accounts the
// store holds — MQTT devices and API users — and slows down guessing.
//
// One place owns them, as etcd's server/auth does: every generated password
// has one format (NewPassword), every hash one cost, and one Checker, shared
// by the broker and the API, runs one bcrypt comparison at a time for the
// whole process (a bcrypt costs ~50 ms here and far more on a Pi Zero: two
// logins at once must not take both cores from the ingest path). An unknown
// name costs the same bcrypt against a dummy hash, so the time of a refusal
// does not tell which names exist. The Throttle counts failures per source
// address and per account.
package credentials
