// Package deploy tests what this directory's scripts ship: TestDebianPackages
// builds the three .deb packages with package.sh and installs, removes and
// purges one in a scratch root (with FIELDGATE_TEST_LONG=1, as root).
package deploy
