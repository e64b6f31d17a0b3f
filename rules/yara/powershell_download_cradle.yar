rule powershell_download_cradle : execution attack_t1059_001
{
    meta:
        description = "PowerShell downloads and runs a script in memory (download cradle)"
        author = "Vedette team"
        severity = "high"
    strings:
        $iex = /\b(iex|invoke-expression)\b/ nocase
        $web1 = "Net.WebClient" nocase
        $web2 = "DownloadString" nocase
        $web3 = "Invoke-WebRequest" nocase
        $web4 = "DownloadData" nocase
    condition:
        $iex and any of ($web*)
}
