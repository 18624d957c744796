// Package sht4x drives Sensirion SHT40, SHT41 and SHT45 temperature and
// humidity sensors over I²C, in periph's style.
//
// A measurement is one command byte (high, medium or low precision), a wait
// of the datasheet's maximum duration, and a 6-byte read whose two words are
// each checked with the Sensirion CRC-8 (a mismatch is a *sensirion.CRCError).
// NewI2C soft-resets the chip and reads its serial number, which proves a
// working SHT4x answers at the address.
//
// Datasheet: https://sensirion.com/media/documents/33FD6951/6555C40E/Sensirion_Datasheets_SHT4x.pdf
//
// Addresses: 0x44 (SHT4x-A, the common one), 0x45 (-B) or 0x46 (-C).
package sht4x
