// Package sht3x drives Sensirion SHT30, SHT31 and SHT35 temperature and
// humidity sensors over I²C, in periph's style.
//
// It uses single-shot measurements with clock stretching disabled (the
// Raspberry Pi's I²C controller handles clock stretching badly), so a
// measurement is: send the command, wait the datasheet's maximum duration for
// the chosen repeatability, read six bytes. Every 16-bit word is checked with
// the Sensirion CRC-8; a mismatch is a *sensirion.CRCError. The heater is
// switched off at start.
//
// Datasheet: https://sensirion.com/media/documents/213E6A3B/63A5A569/Datasheet_SHT3x_DIS.pdf
//
// Addresses: 0x44 (ADDR pin low, the default on most breakout boards) or 0x45.
package sht3x
