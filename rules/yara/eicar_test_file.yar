rule eicar_test_file : test
{
    meta:
        description = "EICAR anti-virus test file (harmless; proves the YARA stage scans)"
        author = "Vedette team"
        severity = "low"
    strings:
        $eicar = "EICAR-STANDARD-ANTIVIRUS-TEST-FILE"
    condition:
        $eicar
}
