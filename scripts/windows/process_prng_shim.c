/*
 * bcryptprimitives.dll stand-in for running Rust programs under Wine 8.
 *
 * Rust's standard library for Windows gets its random numbers from
 * bcryptprimitives!ProcessPrng (Windows 10+), which Wine 8 does not implement, so
 * every Rust .exe fails to start there. This DLL, placed beside the .exe, provides
 * ProcessPrng on top of advapi32!SystemFunction036 (RtlGenRandom), which Wine has.
 * Test lane only: it is never shipped.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
